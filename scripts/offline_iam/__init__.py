"""The offline world enforces the functions' IAM roles, as AWS will.

Each function runs, in the local run and in the tests, with exactly the permissions of its
synthesized role: the role's policy is read from the CDK templates (:mod:`.templates`), created
in moto's IAM and assumed (:mod:`.moto_iam`), and its credentials sign the function's DynamoDB
calls (which moto then authorizes) and its Bedrock calls (which the stand-in authorizes with the
same policy). A call the role lacks fails here with AccessDenied, as it would in AWS.
"""
