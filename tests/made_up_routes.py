"""A routes file for a domain the project does not ship: a beekeeping and cycling help desk.

Made the way the docs tell a user to (``scripts/routes.py new``, then hand-written prompts and
texts in place of the placeholders), so the configuration-generic tests can run against a file
that is valid but shares no category, prompt or text with the examples. The prompts are written
for this file; none comes from an evaluation set.
"""

from __future__ import annotations

import json
from pathlib import Path

from routes_kit import skeleton

CATEGORIES = ("beekeeping", "cycling")
DESCRIPTIONS = {
    "beekeeping": "questions about beekeeping: honey bees, hives, colonies, queens, swarms, "
                  "honey harvest, pollination, varroa mites and bee health",
    "cycling": "questions about cycling: bicycles, bike repair, tyres, gears, brakes, chains, "
               "riding technique, training rides and bike touring",
}
PROMPTS = {
    "beekeeping": [
        "How do I tell if my hive has a laying queen?",
        "When is the best time of year to harvest honey?",
        "Why are my bees swarming and how can I prevent it?",
        "How do I treat a colony for varroa mites?",
        "What should I feed bees over the winter?",
        "How many frames of brood does a healthy colony need in spring?",
        "What does a queen cell look like on a frame?",
        "Why do worker bees fan their wings at the hive entrance?",
        "How far do honey bees fly to forage for nectar?",
        "Should I use a queen excluder in my beehive?",
        "How do I calm bees with a smoker before an inspection?",
        "What causes chalkbrood in a bee colony?",
        "How much honey should I leave in the hive for winter?",
        "How do I split a strong beehive into two colonies?",
    ],
    "cycling": [
        "How do I fix a flat tyre on my road bike?",
        "Why does my bike chain keep slipping when I pedal hard?",
        "What tyre pressure should I run on a gravel bike?",
        "How do I adjust the rear derailleur so the gears shift cleanly?",
        "My disc brakes squeal, how do I stop it?",
        "How often should I lubricate my bicycle chain?",
        "What is a good cadence for long training rides?",
        "How should I set my saddle height?",
        "What should I pack for a week of bike touring?",
        "How do I climb steep hills on a bike without burning out?",
        "When should I replace a worn bicycle chain?",
        "How do I true a wobbly bicycle wheel?",
        "Is a carbon or aluminium frame better for a first road bike?",
        "How do I bleed hydraulic brakes on a mountain bike?",
    ],
}
TEXTS = {
    "system_prompt": "You are a help desk for beekeeping and cycling. Answer questions about "
                     "beekeeping and cycling concisely and correctly. If a question is about "
                     "something else, say politely that you only help with beekeeping and cycling.",
    "decline_message": "I only help with beekeeping and cycling, so I can't answer that. Ask me "
                       "about your hive or your bike.",
}


def made_up_routes(template: Path) -> dict:
    """The beekeeping and cycling routes document, from ``template``'s operational sections."""
    raw = skeleton(json.loads(template.read_text(encoding="utf-8")), CATEGORIES)
    for name in CATEGORIES:
        raw["categories"][name] = {
            "description": DESCRIPTIONS[name],
            "reference_prompts": PROMPTS[name],
        }
    for preset in raw["presets"].values():
        preset["description"] = preset["description"].split(" (TODO")[0]
    raw["answering"]["system_prompt"] = TEXTS["system_prompt"]
    raw["out_of_scope"]["decline_message"] = TEXTS["decline_message"]
    return raw


def write_made_up_routes(template: Path, out: Path) -> Path:
    out.write_text(json.dumps(made_up_routes(template), indent=2) + "\n", encoding="utf-8")
    return out


if __name__ == "__main__":  # python tests/made_up_routes.py TEMPLATE OUT: for a manual run
    import sys

    print(write_made_up_routes(Path(sys.argv[1]), Path(sys.argv[2])))
