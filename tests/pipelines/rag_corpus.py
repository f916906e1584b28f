"""A retrieval test corpus written for Parley: 20 documents on distinct topics, with near-miss pairs
(two warranties, two trains, two recipes, two leave policies...), and 40 questions with their answer's document."""

from __future__ import annotations

DOCUMENTS: dict[str, str] = {
    "laptop-warranty.md": """# Orbis laptop warranty
Every Orbis laptop comes with a two-year limited warranty that covers manufacturing defects in the
motherboard, screen and keyboard. Battery wear is covered only during the first twelve months.
## Claims
To make a claim, ship the laptop to the Rotterdam repair centre with the original receipt. Repairs take
about ten working days. Accidental damage such as spilled coffee is never covered.""",
    "phone-warranty.md": """# Vela phone warranty
Vela phones carry a one-year warranty. Cracked screens are excluded unless the crack starts at the hinge.
## Claims
Phone claims are handled in any Vela shop; a replacement phone is lent to you while yours is repaired,
which usually takes three days. Water damage voids the warranty.""",
    "night-train.md": """# The Aurora night train
The Aurora night train leaves Vienna at 21:40 and arrives in Hamburg at 09:15. Sleeper cabins hold two
beds and include breakfast. Bicycles travel in the last carriage if booked 48 hours in advance.""",
    "express-train.md": """# The Meridian express
The Meridian express runs every two hours between Lyon and Milan; the journey takes five hours and ten
minutes through the Fréjus tunnel. There is no sleeper service, but the bistro car serves hot meals.""",
    "sourdough.md": """# Sourdough bread
Feed the starter twelve hours before baking. Mix 500 g flour, 350 g water and 100 g active starter, rest
for an hour, then add 10 g salt. Bulk ferment for five hours with four sets of stretch and folds.
Bake at 250 degrees in a covered Dutch oven for twenty minutes, then uncovered for twenty-five.""",
    "pancakes.md": """# Buttermilk pancakes
Whisk 250 g flour, two eggs, 400 ml buttermilk, a spoon of sugar and a teaspoon of baking soda. Let the batter
rest ten minutes. Cook on a medium pan until bubbles appear, then flip once.""",
    "parental-leave.md": """# Parental leave policy
Employees receive sixteen weeks of fully paid parental leave, to be taken within the first year after the
birth or adoption. Leave can be split into at most three blocks. Tell your manager eight weeks ahead.""",
    "sick-leave.md": """# Sick leave policy
Report sickness to your manager before 10:00 on the first day. From the fourth day of absence a doctor's
note is required. Sick leave is paid at full salary for up to six months.""",
    "volcano.md": """# Mount Halvar
Mount Halvar is a stratovolcano of 2,980 metres. Its last eruption, in 1912, sent ash as far as the coast
and buried the village of Eskil. Today the crater holds a turquoise acid lake.""",
    "glacier.md": """# The Sorbreen glacier
The Sorbreen glacier has retreated 1.4 kilometres since 1950. Guided walks on the ice start from the
visitor centre at 10:00 each morning between June and September; crampons are provided.""",
    "solar-panels.md": """# Home solar panels
A typical 4 kW rooftop array produces about 3,800 kWh a year in central Europe. Panels lose roughly half a
percent of output per year. Inverters usually need replacing after twelve years.""",
    "heat-pumps.md": """# Air-source heat pumps
An air-source heat pump delivers about three units of heat for each unit of electricity at 7 °C outside.
Efficiency drops in frost, so size the unit for the coldest week. Annual servicing checks the refrigerant.""",
    "chess-openings.md": """# The Sicilian Defence
The Sicilian Defence begins 1.e4 c5. Black fights for the centre from the side and accepts an unbalanced
position. The Najdorf variation, with 5...a6, was a favourite of Bobby Fischer and Garry Kasparov.""",
    "go-rules.md": """# Rules of Go
Go is played on a 19 by 19 grid. Players place stones to surround territory; a group with no liberties is
captured. The ko rule forbids repeating the previous board position. White receives komi of 6.5 points.""",
    "password-policy.md": """# Password policy
Passwords must have at least twelve characters. They are never rotated on a schedule, only after a
suspected leak. Multi-factor authentication with an authenticator app is mandatory for all staff.""",
    "vpn-setup.md": """# VPN setup
Install the WireGuard client and import the profile from the self-service portal. The VPN is required on
public Wi-Fi. If the tunnel drops, check that UDP port 51820 is not blocked by the hotel network.""",
    "coffee-brewing.md": """# Pour-over coffee
Use 15 g of medium-fine ground coffee for 250 ml of water at 94 degrees. Bloom with 40 ml for thirty
seconds, then pour in slow circles. Total brew time should be about three minutes.""",
    "tea-brewing.md": """# Green tea
Brew sencha at 70 degrees, never boiling, for one minute. Use 5 g of leaves for 200 ml. The same leaves can
be infused three times, adding twenty seconds each time.""",
    "marathon-training.md": """# Marathon training plan
The sixteen-week plan builds to a longest run of 32 kilometres three weeks before race day. Run four days
a week; one session is intervals. Taper by cutting volume forty percent in the final fortnight.""",
    "swimming-technique.md": """# Freestyle swimming
Breathe every three strokes to keep the stroke balanced. Keep the head low and rotate the hips with each
arm pull. Kick from the hips, not the knees, with relaxed ankles.""",
}

QUESTIONS: list[tuple[str, str]] = [
    ("How long is the warranty on an Orbis laptop?", "laptop-warranty.md"),
    ("Is battery wear covered on the laptop?", "laptop-warranty.md"),
    ("Does the phone warranty cover a cracked screen?", "phone-warranty.md"),
    ("Do I get a replacement phone during repair?", "phone-warranty.md"),
    ("When does the night train from Vienna arrive in Hamburg?", "night-train.md"),
    ("Can I bring my bicycle on the sleeper train?", "night-train.md"),
    ("How long does the trip from Lyon to Milan take?", "express-train.md"),
    ("Which tunnel does the Meridian go through?", "express-train.md"),
    ("At what temperature do I bake sourdough?", "sourdough.md"),
    ("How much salt goes into the sourdough dough?", "sourdough.md"),
    ("How much buttermilk do pancakes need?", "pancakes.md"),
    ("When should I flip a pancake?", "pancakes.md"),
    ("How many weeks of parental leave are paid?", "parental-leave.md"),
    ("Can parental leave be split into blocks?", "parental-leave.md"),
    ("From which day of sickness do I need a doctor's note?", "sick-leave.md"),
    ("By what time must I report that I am sick?", "sick-leave.md"),
    ("When did Mount Halvar last erupt?", "volcano.md"),
    ("What is in the crater of the volcano?", "volcano.md"),
    ("How far has the Sorbreen glacier retreated?", "glacier.md"),
    ("Are crampons provided on the glacier walk?", "glacier.md"),
    ("How much electricity does a 4 kW rooftop array produce per year?", "solar-panels.md"),
    ("When do solar inverters need replacing?", "solar-panels.md"),
    ("How efficient is an air-source heat pump?", "heat-pumps.md"),
    ("Why does a heat pump need annual servicing?", "heat-pumps.md"),
    ("What is the first move of the Sicilian Defence?", "chess-openings.md"),
    ("Which players liked the Najdorf?", "chess-openings.md"),
    ("What does the ko rule forbid?", "go-rules.md"),
    ("How much komi does white get in Go?", "go-rules.md"),
    ("How long must a password be?", "password-policy.md"),
    ("Is multi-factor authentication mandatory?", "password-policy.md"),
    ("Which VPN client should I install?", "vpn-setup.md"),
    ("Which port does WireGuard use?", "vpn-setup.md"),
    ("How much ground coffee for a pour-over?", "coffee-brewing.md"),
    ("How long should coffee bloom?", "coffee-brewing.md"),
    ("What water temperature for sencha?", "tea-brewing.md"),
    ("How many times can green tea leaves be infused?", "tea-brewing.md"),
    ("What is the longest run in the marathon plan?", "marathon-training.md"),
    ("How much should I taper before the marathon?", "marathon-training.md"),
    ("How often should I breathe when swimming freestyle?", "swimming-technique.md"),
    ("Where should the kick come from in freestyle?", "swimming-technique.md"),
]
