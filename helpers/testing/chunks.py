"""Small hand-written chunks for tests and benchmarks (no PDF needed)."""

from __future__ import annotations

from helpers.core.schema import Chunk

SECTIONS = {
    "Hotel allowances": "Staff travelling on Institute business may book hotels up to 180 pounds per night "
    "in London and 120 pounds elsewhere in the United Kingdom. Bookings above the cap need written approval "
    "from a budget holder before travel. Breakfast is included in the nightly allowance.",
    "Rail and air travel": "Standard class rail is the default for journeys under four hours. Flights are "
    "permitted for overseas trips and for domestic journeys that would take longer than five hours by "
    "train. Business class is never reimbursed, whatever the length of the flight.",
    "Expense claims": "Claims must be submitted through the finance portal within 60 days of returning. "
    "Every item above 25 pounds needs an itemised receipt. Late claims are only paid with a signed "
    "explanation from the head of department.",
    "Password rules": "Passwords for Institute accounts must contain at least fourteen characters. "
    "Passphrases built from four unrelated words are encouraged. Passwords are never shared, not even "
    "with the IT Service Desk, which will never ask for them.",
    "Laptop encryption": "All laptops that leave the building carry full-disk encryption enabled by the "
    "IT team. A lost or stolen laptop is reported to the Service Desk within one hour. The device is then "
    "wiped remotely at the next connection.",
    "Chemical storage": "Flammable solvents are kept in the ventilated yellow cabinets, never on open "
    "shelves. Acids and bases are stored in separate trays below eye level. Each container is labelled "
    "with its owner and the date it was opened.",
    "Fume cupboards": "Work with volatile toxic substances happens inside a fume cupboard with the sash "
    "lowered to the marked height. Airflow alarms are tested every month by the facilities team. A "
    "cupboard whose alarm sounds is taken out of use at once.",
    "Data retention": "Research data is kept for ten years after the last publication that relies on it. "
    "Personal data collected for recruitment is deleted six months after the position is filled. "
    "Retention periods are reviewed every two years by the data protection officer.",
}


def sample_chunks(n: int | None = None, source: str = "handbook.pdf") -> list[Chunk]:
    """``n`` chunks (default: one per section); beyond the sections, numbered variants keep ids distinct."""
    items = list(SECTIONS.items())
    n = len(items) if n is None else n
    chunks = []
    for i in range(n):
        heading, text = items[i % len(items)]
        text = text if i < len(items) else f"{text} (Revision {i // len(items)}, clause {i}.)"
        chunks.append(Chunk(text=text, source=source, pages=[1 + i // 4], start=0, end=len(text),
                            heading=heading))
    return chunks
