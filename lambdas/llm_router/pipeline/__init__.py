"""The request pipeline: the router service and the factory that assembles it per strategy."""
