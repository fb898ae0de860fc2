"""Agents' notes for call-center contacts.

Style (terse note or full paragraph) is drawn independently of tone and topic, so neither length nor
wording style reveals the outcome (a flaw of the utility's earlier synthetic text). Notes never restate
structured fields such as exact days to renewal or tenure.
"""

from __future__ import annotations

import numpy as np

SHORT_TOPIC = {
    "cancellation": [
        "Cust wants to cancel contract.",
        "Asked how to terminate supply.",
        "Req cancellation info.",
        "Cust asked about early termination fee.",
    ],
    "complaint": [
        "Cust complained re: bill amount.",
        "Complaint about technician no-show.",
        "Complaint re: estimated reading.",
        "Cust complained about call wait time.",
    ],
    "billing": [
        "Inq re: last invoice.",
        "Cust asked about past due bill.",
        "Bill breakdown explained.",
        "Query on invoice dates.",
    ],
    "pricing": [
        "Cust asked about tariff prices.",
        "Inq re: price change on bill.",
        "Asked for cheaper tariff.",
        "Query re: price per kWh.",
    ],
    "renewal": [
        "Inq re: contract renewal.",
        "Cust asked about renewal options.",
        "Renewal terms reviewed.",
        "Asked when contract renews.",
    ],
    "plan": [
        "Inq re: plan options.",
        "Asked about solar add-on.",
        "Cust asked about green energy plan.",
        "Query on time-of-use plan.",
    ],
    "account": [
        "Updated contact details.",
        "Changed account holder.",
        "Cust asked for online access.",
        "Updated bank account.",
    ],
    "outage": [
        "Reported supply cut.",
        "Cust reported power outage.",
        "Asked about outage in area.",
        "Reported gas supply interruption.",
    ],
    "meter_reading": [
        "Submitted meter reading.",
        "Inq re: smart meter data.",
        "Reading dispute logged.",
        "Cust asked about meter visit.",
    ],
    "moving": [
        "Cust moving house.",
        "Asked to move supply to new address.",
        "Change of address req.",
        "Moving out next month.",
    ],
    "direct_debit": [
        "Set up direct debit.",
        "Changed payment day.",
        "Direct debit failed, resolved.",
        "Asked about payment plan.",
    ],
    "final_bill": ["Final bill query.", "Asked about final invoice.", "Final meter reading sent."],
    "cancellation_confirmed": ["Cancellation confirmed.", "Supply end confirmed.", "Account closed, confirmed."],
}
SHORT_TONE = {
    "negative": [
        "Unhappy.",
        "Very frustrated.",
        "Angry about service.",
        "Disappointed, looking elsewhere.",
        "Upset with response.",
        "Annoyed, threatened to leave.",
    ],
    "neutral": [
        "Info provided.",
        "Adv next steps.",
        "Case logged.",
        "No further action.",
        "Ref sent by email.",
        "Ticket opened.",
    ],
    "positive": [
        "Happy with service.",
        "Thanked agent.",
        "Pleased with outcome.",
        "Great, resolved.",
        "Good experience.",
        "Satisfied, thanks.",
    ],
}
LONG_TOPIC = {
    "cancellation": "The customer called to ask how to end the supply contract and what fees might apply",
    "complaint": "The customer raised a complaint about recent service and the handling of an earlier request",
    "billing": "The customer asked for an explanation of the latest invoice and the billing period it covers",
    "pricing": "The customer asked about current tariff prices and how they compare with other offers",
    "renewal": "The customer asked about the terms that will apply when the current contract is renewed",
    "plan": "The customer asked which products could fit their household better, including green options",
    "account": "The customer asked to update account details and access to the online area",
    "outage": "The customer reported an interruption of supply and asked when it would be restored",
    "meter_reading": "The customer asked about meter readings shown on the bill and how they are taken",
    "moving": "The customer explained they are moving and asked how to transfer or close the supply",
    "direct_debit": "The customer asked to change how and when bills are paid by direct debit",
    "final_bill": "The former customer asked about the final invoice after the supply ended",
    "cancellation_confirmed": "The agent confirmed to the customer that the supply contract has ended",
}
LONG_TONE = {
    "negative": [
        "They were clearly frustrated and said the service has been poor and unfair.",
        "The customer was angry and disappointed, and mentioned looking at other providers.",
        "They sounded upset and unhappy with how previous calls were handled.",
    ],
    "neutral": [
        "The agent explained the available options and sent the details by email.",
        "The agent logged the request and explained the next steps.",
        "The request was registered and a reference number was provided.",
    ],
    "positive": [
        "The customer was happy with the help and thanked the agent.",
        "They said they were pleased with the service and satisfied with the answer.",
        "The call ended on a positive note and the customer appreciated the quick support.",
    ],
}
LONG_EXTRA = [
    "",
    "",
    "",
    " The agent also checked the contact details on file.",
    " A follow-up call was offered.",
    " The customer asked to receive future bills electronically.",
]


def render_summaries(
    rng: np.random.Generator, intents: list[str], sentiments: list[str], styles: np.ndarray
) -> list[str]:
    """One note per contact; ``styles`` is 0 for a terse note and 1 for a paragraph."""
    notes = []
    pick = rng.random((len(intents), 3))
    for i, (intent, tone) in enumerate(zip(intents, sentiments, strict=True)):
        if styles[i] == 0:
            topics, tones = SHORT_TOPIC[intent], SHORT_TONE[tone]
            notes.append(f"{topics[int(pick[i, 0] * len(topics))]} {tones[int(pick[i, 1] * len(tones))]}")
        else:
            tones = LONG_TONE[tone]
            extra = LONG_EXTRA[int(pick[i, 2] * len(LONG_EXTRA))]
            notes.append(f"{LONG_TOPIC[intent]}. {tones[int(pick[i, 1] * len(tones))]}{extra}")
    return notes
