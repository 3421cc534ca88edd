"""Invoice and credit-note documents (issue 14, docs/adr/0037): the PDF a
person reads, the EN 16931 e-invoice (Factur-X: CII XML, profile EN 16931,
embedded in a PDF/A-3) and a CSV of the lines.

Pure rendering: the same ``InvoiceDocument`` gives the same bytes, every
time, on every machine with the same fonts and library versions. No clock
is read: every date in a file comes from the document (its issue date).

The document *presents* figures; it does not decide them. The billing
slice decides every amount (charges rounded once each, VAT on the
category's taxable amount, docs/adr/0035 and 0036); ``InvoiceDocument``
only checks that the figures it is given agree with each other (the
EN 16931 business rules named below) and refuses to exist otherwise, so a
document can never show totals its lines do not add up to.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, Protocol, cast

import facturx  # type: ignore[import-untyped]  # the package ships no type hints
from fpdf import FPDF, FontFace
from lxml import etree
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    NameObject,
    StreamObject,
    TextStringObject,
)

from producers.pdf_fonts import add_font

CENT = Decimal("0.01")

# --- the input model ------------------------------------------------------------------


class DocumentKind(StrEnum):
    """The UNTDID 1001 document type (EN 16931 BT-3)."""

    INVOICE = "INVOICE"
    CREDIT_NOTE = "CREDIT_NOTE"

    @property
    def type_code(self) -> str:
        return "380" if self is DocumentKind.INVOICE else "381"

    @property
    def caption(self) -> str:
        return "Invoice" if self is DocumentKind.INVOICE else "Credit note"


class UnitCode(StrEnum):
    """UN/ECE Recommendation 20 units (EN 16931 BT-130)."""

    KWH = "KWH"  # kilowatt hour: charged energy
    C62 = "C62"  # one: a monthly member fee

    @property
    def label(self) -> str:
        return "kWh" if self is UnitCode.KWH else "pcs"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


Text = Annotated[str, Field(min_length=1, max_length=300)]
# Amounts a document shows: exact, at most two decimals (EN 16931 BR-DEC-*).
Amount = Annotated[Decimal, Field(max_digits=18, decimal_places=2, allow_inf_nan=False)]
# Unit prices and quantities carry more decimals (a price per kWh of 0.3475).
Fine = Annotated[Decimal, Field(max_digits=18, decimal_places=6, allow_inf_nan=False)]
Rate = Annotated[Decimal, Field(gt=0, le=1, decimal_places=6, allow_inf_nan=False)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


class PostalAddress(_Model):
    street: Text
    postal_code: Annotated[str, Field(min_length=1, max_length=20)]
    city: Text
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]  # ISO 3166-1 alpha-2


class Party(_Model):
    """Seller (BG-4) or buyer (BG-7): legal name, address, VAT id (BT-31 /
    BT-48), legal registration id (BT-30 / BT-47) and e-mail (BT-34 / BT-49)."""

    legal_name: Text
    address: PostalAddress
    vat_id: Annotated[str, Field(min_length=3, max_length=40)]
    registration_id: Annotated[str, Field(min_length=1, max_length=40)]
    email: Annotated[str, Field(pattern=r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$", max_length=254)]


class CreditTransfer(_Model):
    """Payment means (BG-16): SEPA credit transfer (UNTDID 4461 code 58)
    to the seller's account."""

    iban: Annotated[str, Field(pattern=r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$")]
    bic: Annotated[str, Field(pattern=r"^[A-Z0-9]{8}([A-Z0-9]{3})?$")]


class InvoiceReference(_Model):
    """The invoice a credit note corrects (BG-3: BT-25, BT-26)."""

    number: Text
    issue_date: date


class InvoiceLine(_Model):
    """One line (BG-25). ``net_amount`` is what the billing slice decided:
    for energy the sum of ``charges`` charges, each rounded once to the cent
    (docs/adr/0035), so it may differ from quantity x unit price by up to
    half a cent per charge; the document checks that bound, nothing more."""

    line_id: Annotated[str, Field(min_length=1, max_length=40)]
    description: Text
    quantity: Fine
    unit_code: UnitCode
    unit_price: Annotated[Fine, Field(ge=0)]  # excl. VAT (BT-146; BR-27: not negative)
    net_amount: Amount
    vat_rate: Rate
    # How many separately rounded amounts net_amount adds up (1: net is
    # quantity x unit price rounded once, as for a fee).
    charges: Annotated[int, Field(ge=1)] = 1


class VatBreakdown(_Model):
    """One VAT category and rate (BG-23): only standard rated (S) so far."""

    category: Literal["S"] = "S"
    rate: Rate
    taxable_amount: Amount
    tax_amount: Amount
    # How many separately rounded VAT amounts ``tax_amount`` settles: 1 for
    # an invoice and most credit notes; a credit note crediting all that
    # remained of an invoice carries the VAT that remained, the invoice's
    # less its earlier credit notes' (docs/adr/0041), each rounded once.
    roundings: Annotated[int, Field(ge=1)] = 1


class InvoiceDocument(_Model):
    """Everything an invoice or credit note shows, with its totals as the
    billing slice decided them. Building one checks the figures agree."""

    kind: DocumentKind
    number: Annotated[str, Field(min_length=1, max_length=40)]
    issue_date: date
    due_date: date
    period_start: date
    period_end: date
    currency: Currency
    seller: Party
    buyer: Party
    payment_terms: Text
    payment_means: CreditTransfer
    lines: Annotated[tuple[InvoiceLine, ...], Field(min_length=1)]
    vat_breakdown: Annotated[tuple[VatBreakdown, ...], Field(min_length=1)]
    net_total: Amount
    vat_total: Amount
    gross_total: Amount
    amount_due: Amount
    # A credit note names the invoice it corrects; an invoice names none.
    corrects: InvoiceReference | None = None

    @model_validator(mode="after")
    def _figures_agree(self) -> InvoiceDocument:
        for problem in inconsistencies(self):
            raise ValueError(problem)
        return self


def inconsistencies(doc: InvoiceDocument) -> Iterable[str]:
    """Each way the document's figures disagree, named by the EN 16931 rule."""
    if (doc.kind is DocumentKind.CREDIT_NOTE) != (doc.corrects is not None):
        yield "BR-55: a credit note names the invoice it corrects, an invoice none"
    if doc.period_end < doc.period_start:
        yield "BR-29: the billing period ends before it starts"
    if doc.due_date < doc.issue_date:
        yield "the due date is before the issue date"
    ids = [line.line_id for line in doc.lines]
    if len(set(ids)) != len(ids):
        yield "BR-21: line ids are not unique"
    for line in doc.lines:
        exact = line.quantity * line.unit_price
        # Each charge was rounded once, half up, so at most half a cent off.
        if abs(line.net_amount - exact) > line.charges * Decimal("0.005"):
            yield (
                f"line {line.line_id}: net amount {line.net_amount} is not "
                f"{line.quantity} x {line.unit_price} = {exact} within "
                f"{line.charges} rounding(s) to the cent"
            )
    line_sum = sum((line.net_amount for line in doc.lines), Decimal(0))
    if line_sum != doc.net_total:
        yield f"BR-CO-10: the lines add up to {line_sum}, not the net total {doc.net_total}"
    rates = [entry.rate for entry in doc.vat_breakdown]
    if len(set(rates)) != len(rates):
        yield "BR-S-08: one VAT breakdown per rate"
    for entry in doc.vat_breakdown:
        taxable = sum((li.net_amount for li in doc.lines if li.vat_rate == entry.rate), Decimal(0))
        if taxable != entry.taxable_amount:
            yield (
                f"BR-S-08: the lines at {percent(entry.rate)} % add up to {taxable}, "
                f"not the taxable amount {entry.taxable_amount}"
            )
        # One rounding, half up, of the category's VAT (docs/adr/0037); a
        # remainder of several (docs/adr/0041) is within half a cent of each.
        exact = entry.taxable_amount * entry.rate
        tax = exact.quantize(CENT, ROUND_HALF_UP)
        if entry.roundings > 1:
            if abs(entry.tax_amount - exact) > entry.roundings * Decimal("0.005"):
                yield (
                    f"BR-S-09: {entry.taxable_amount} at {percent(entry.rate)} % is VAT "
                    f"{exact}, not {entry.tax_amount} within {entry.roundings} roundings"
                )
        elif tax != entry.tax_amount:
            yield (
                f"BR-S-09: {entry.taxable_amount} at {percent(entry.rate)} % is VAT {tax}, "
                f"not {entry.tax_amount}"
            )
    missing = {line.vat_rate for line in doc.lines} - set(rates)
    if missing:
        yield f"BR-S-08: no VAT breakdown for rate(s) {sorted(percent(r) for r in missing)}"
    tax_sum = sum((entry.tax_amount for entry in doc.vat_breakdown), Decimal(0))
    if tax_sum != doc.vat_total:
        yield f"BR-CO-14: the VAT breakdown adds up to {tax_sum}, not the VAT total {doc.vat_total}"
    if doc.net_total + doc.vat_total != doc.gross_total:
        yield (
            f"BR-CO-15: net {doc.net_total} + VAT {doc.vat_total} is not "
            f"the gross total {doc.gross_total}"
        )
    # No prepayment or rounding amount (BT-113, BT-114) on our documents.
    if doc.amount_due != doc.gross_total:
        yield f"BR-CO-16: the amount due {doc.amount_due} is not the gross total {doc.gross_total}"


def percent(rate: Decimal) -> str:
    """A fraction as a plain percentage: 0.21 -> "21", 0.055 -> "5.5"."""
    return plain(rate * 100)


def plain(value: Decimal) -> str:
    """A Decimal without exponent or trailing zeros after the point."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def decimal_text(value: Decimal) -> str:
    """A Decimal as given (its own scale), without exponent: 0.350 -> "0.350"."""
    return format(value, "f")


def amount(value: Decimal) -> str:
    """Money with exactly two decimals, dot, no grouping (XML and CSV)."""
    return format(value.quantize(CENT), "f")


# --- the seller, from settings --------------------------------------------------------


class SellerSettings(Protocol):
    """The ``OCPI_HUB_BILLING_SELLER_*`` settings (ocpi_hub/settings.py);
    a protocol so that producers/ does not import the settings module."""

    @property
    def billing_seller_legal_name(self) -> str: ...
    @property
    def billing_seller_street(self) -> str: ...
    @property
    def billing_seller_postal_code(self) -> str: ...
    @property
    def billing_seller_city(self) -> str: ...
    @property
    def billing_seller_country(self) -> str: ...
    @property
    def billing_seller_vat_id(self) -> str: ...
    @property
    def billing_seller_registration_id(self) -> str: ...
    @property
    def billing_seller_email(self) -> str: ...
    @property
    def billing_seller_iban(self) -> str: ...
    @property
    def billing_seller_bic(self) -> str: ...


def seller_from(settings: SellerSettings) -> tuple[Party, CreditTransfer]:
    """Our company as the seller, and the account it is paid to."""
    party = Party(
        legal_name=settings.billing_seller_legal_name,
        address=PostalAddress(
            street=settings.billing_seller_street,
            postal_code=settings.billing_seller_postal_code,
            city=settings.billing_seller_city,
            country=settings.billing_seller_country,
        ),
        vat_id=settings.billing_seller_vat_id,
        registration_id=settings.billing_seller_registration_id,
        email=settings.billing_seller_email,
    )
    means = CreditTransfer(
        iban=settings.billing_seller_iban.replace(" ", ""), bic=settings.billing_seller_bic
    )
    return party, means


def document_datetime(doc: InvoiceDocument) -> datetime:
    """The one instant every file of a document carries (creation and
    modification dates): midnight UTC of its issue date, never the clock."""
    return datetime.combine(doc.issue_date, time(0, 0), tzinfo=UTC)


class FontFiles(_Model):
    """The TrueType files the PDF embeds (settings ``billing_pdf_font_*``)."""

    regular: Path
    bold: Path


# --- CSV of the lines -------------------------------------------------------------------

CSV_COLUMNS = (
    "document_number",
    "line_id",
    "description",
    "quantity",
    "unit_code",
    "unit_price",
    "vat_category",
    "vat_rate_percent",
    "net_amount",
    "currency",
)


def invoice_csv(doc: InvoiceDocument) -> bytes:
    """The lines as CSV: a header row, then one row per line in the
    document's order (the order of the PDF and the XML); numbers as plain
    decimal strings with a dot, UTF-8, CRLF line ends (RFC 4180)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for line in doc.lines:
        writer.writerow(
            (
                doc.number,
                line.line_id,
                line.description,
                decimal_text(line.quantity),
                line.unit_code.value,
                decimal_text(line.unit_price),
                "S",
                percent(line.vat_rate),
                amount(line.net_amount),
                doc.currency,
            )
        )
    return out.getvalue().encode("utf-8")


# --- EN 16931 e-invoice: UN/CEFACT CII XML, Factur-X profile EN 16931 ---------------------

RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
CII_NAMESPACES = {"rsm": RSM, "qdt": QDT, "ram": RAM, "udt": UDT}
# BT-24: the specification identifier of EN 16931 itself (Factur-X's
# EN 16931 profile uses the bare standard's URN).
EN16931_GUIDELINE = "urn:cen.eu:en16931:2017"
FACTURX_FILENAME = "factur-x.xml"


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    prefix, name = tag.split(":")
    element = etree.SubElement(parent, f"{{{CII_NAMESPACES[prefix]}}}{name}", attrs)
    if text is not None:
        element.text = text
    return element


def _date(parent: etree._Element, tag: str, value: date, *, qualified: bool = False) -> None:
    # Format 102 is CCYYMMDD (UNTDID 2379), the only one EN 16931 allows.
    holder = _sub(parent, tag)
    _sub(
        holder,
        "qdt:DateTimeString" if qualified else "udt:DateTimeString",
        value.strftime("%Y%m%d"),
        format="102",
    )


def _party(parent: etree._Element, tag: str, party: Party) -> None:
    # Element order is the CII schema's (TradePartyType), not free.
    holder = _sub(parent, tag)
    _sub(holder, "ram:Name", party.legal_name)
    legal = _sub(holder, "ram:SpecifiedLegalOrganization")
    _sub(legal, "ram:ID", party.registration_id)
    address = _sub(holder, "ram:PostalTradeAddress")
    _sub(address, "ram:PostcodeCode", party.address.postal_code)
    _sub(address, "ram:LineOne", party.address.street)
    _sub(address, "ram:CityName", party.address.city)
    _sub(address, "ram:CountryID", party.address.country)
    uri = _sub(holder, "ram:URIUniversalCommunication")
    # EAS code EM: an e-mail address as the electronic address (BT-34/BT-49).
    _sub(uri, "ram:URIID", party.email, schemeID="EM")
    tax = _sub(holder, "ram:SpecifiedTaxRegistration")
    _sub(tax, "ram:ID", party.vat_id, schemeID="VA")


def _vat(parent: etree._Element, rate: Decimal) -> None:
    tax = _sub(parent, "ram:ApplicableTradeTax")
    _sub(tax, "ram:TypeCode", "VAT")
    _sub(tax, "ram:CategoryCode", "S")
    _sub(tax, "ram:RateApplicablePercent", percent(rate))


def invoice_xml(doc: InvoiceDocument) -> bytes:
    """The document as Factur-X CII XML at profile EN 16931 (UTF-8, with
    declaration). The business terms are noted where the mapping is not
    obvious; validated against the official XSD in the tests."""
    root = etree.Element(f"{{{RSM}}}CrossIndustryInvoice", nsmap=CII_NAMESPACES)
    context = _sub(root, "rsm:ExchangedDocumentContext")
    guideline = _sub(context, "ram:GuidelineSpecifiedDocumentContextParameter")
    _sub(guideline, "ram:ID", EN16931_GUIDELINE)

    header = _sub(root, "rsm:ExchangedDocument")
    _sub(header, "ram:ID", doc.number)  # BT-1
    _sub(header, "ram:TypeCode", doc.kind.type_code)  # BT-3
    _date(header, "ram:IssueDateTime", doc.issue_date)  # BT-2

    transaction = _sub(root, "rsm:SupplyChainTradeTransaction")
    for line in doc.lines:
        item = _sub(transaction, "ram:IncludedSupplyChainTradeLineItem")
        _sub(_sub(item, "ram:AssociatedDocumentLineDocument"), "ram:LineID", line.line_id)
        _sub(_sub(item, "ram:SpecifiedTradeProduct"), "ram:Name", line.description)  # BT-153
        agreement = _sub(item, "ram:SpecifiedLineTradeAgreement")
        price = _sub(agreement, "ram:NetPriceProductTradePrice")
        _sub(price, "ram:ChargeAmount", decimal_text(line.unit_price))  # BT-146
        delivery = _sub(item, "ram:SpecifiedLineTradeDelivery")
        _sub(
            delivery,
            "ram:BilledQuantity",
            decimal_text(line.quantity),
            unitCode=line.unit_code.value,
        )
        settlement = _sub(item, "ram:SpecifiedLineTradeSettlement")
        _vat(settlement, line.vat_rate)
        summation = _sub(settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation")
        _sub(summation, "ram:LineTotalAmount", amount(line.net_amount))  # BT-131

    agreement = _sub(transaction, "ram:ApplicableHeaderTradeAgreement")
    _party(agreement, "ram:SellerTradeParty", doc.seller)
    _party(agreement, "ram:BuyerTradeParty", doc.buyer)
    delivery = _sub(transaction, "ram:ApplicableHeaderTradeDelivery")
    # BT-72: the energy was delivered over the period; its last day stands
    # as the delivery date (an empty element is a Peppol warning).
    event = _sub(delivery, "ram:ActualDeliverySupplyChainEvent")
    _date(event, "ram:OccurrenceDateTime", doc.period_end)

    settlement = _sub(transaction, "ram:ApplicableHeaderTradeSettlement")
    _sub(settlement, "ram:PaymentReference", doc.number)  # BT-83: what the payer quotes
    _sub(settlement, "ram:InvoiceCurrencyCode", doc.currency)  # BT-5
    means = _sub(settlement, "ram:SpecifiedTradeSettlementPaymentMeans")
    _sub(means, "ram:TypeCode", "58")  # BT-81: SEPA credit transfer
    account = _sub(means, "ram:PayeePartyCreditorFinancialAccount")
    _sub(account, "ram:IBANID", doc.payment_means.iban)  # BT-84
    bank = _sub(means, "ram:PayeeSpecifiedCreditorFinancialInstitution")
    _sub(bank, "ram:BICID", doc.payment_means.bic)  # BT-86
    for entry in doc.vat_breakdown:  # BG-23
        tax = _sub(settlement, "ram:ApplicableTradeTax")
        _sub(tax, "ram:CalculatedAmount", amount(entry.tax_amount))  # BT-117
        _sub(tax, "ram:TypeCode", "VAT")
        _sub(tax, "ram:BasisAmount", amount(entry.taxable_amount))  # BT-116
        _sub(tax, "ram:CategoryCode", entry.category)  # BT-118
        _sub(tax, "ram:RateApplicablePercent", percent(entry.rate))  # BT-119
    period = _sub(settlement, "ram:BillingSpecifiedPeriod")  # BG-14
    _date(period, "ram:StartDateTime", doc.period_start)
    _date(period, "ram:EndDateTime", doc.period_end)
    terms = _sub(settlement, "ram:SpecifiedTradePaymentTerms")
    _sub(terms, "ram:Description", doc.payment_terms)  # BT-20
    _date(terms, "ram:DueDateDateTime", doc.due_date)  # BT-9
    totals = _sub(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    _sub(totals, "ram:LineTotalAmount", amount(doc.net_total))  # BT-106
    _sub(totals, "ram:TaxBasisTotalAmount", amount(doc.net_total))  # BT-109
    _sub(totals, "ram:TaxTotalAmount", amount(doc.vat_total), currencyID=doc.currency)  # BT-110
    _sub(totals, "ram:GrandTotalAmount", amount(doc.gross_total))  # BT-112
    _sub(totals, "ram:DuePayableAmount", amount(doc.amount_due))  # BT-115
    if doc.corrects is not None:  # BG-3
        reference = _sub(settlement, "ram:InvoiceReferencedDocument")
        _sub(reference, "ram:IssuerAssignedID", doc.corrects.number)  # BT-25
        _date(reference, "ram:FormattedIssueDateTime", doc.corrects.issue_date, qualified=True)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


# --- the PDF a person reads -----------------------------------------------------------------

CURRENCY_SIGNS = {"EUR": "€", "GBP": "£", "USD": "$"}
PRODUCER = "ocpi-hub"


def money(value: Decimal, currency: str) -> str:
    """Money for people: sign, thousands grouped, two decimals (€ 1,234.50)."""
    grouped = f"{value.quantize(CENT):,f}"
    sign = CURRENCY_SIGNS.get(currency)
    return f"{sign} {grouped}" if sign else f"{currency} {grouped}"


def _pdf_xmp(doc: InvoiceDocument, title: str) -> str:
    """PDF/A-3b identification and the descriptive metadata, with the
    document's own date (fpdf2's own XMP would stamp the clock)."""
    stamp = document_datetime(doc).isoformat(timespec="seconds")

    def esc(text: str) -> str:
        return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    return "\n".join(
        (
            '<x:xmpmeta xmlns:x="adobe:ns:meta/">',
            ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">',
            '  <rdf:Description rdf:about=""',
            '    xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/"',
            '    xmlns:dc="http://purl.org/dc/elements/1.1/"',
            '    xmlns:xmp="http://ns.adobe.com/xap/1.0/"',
            '    xmlns:pdf="http://ns.adobe.com/pdf/1.3/">',
            "   <pdfaid:part>3</pdfaid:part>",
            "   <pdfaid:conformance>B</pdfaid:conformance>",
            f'   <dc:title><rdf:Alt><rdf:li xml:lang="x-default">{esc(title)}</rdf:li>'
            "</rdf:Alt></dc:title>",
            f"   <dc:creator><rdf:Seq><rdf:li>{esc(doc.seller.legal_name)}</rdf:li>"
            "</rdf:Seq></dc:creator>",
            f"   <xmp:CreatorTool>{PRODUCER}</xmp:CreatorTool>",
            f"   <xmp:CreateDate>{stamp}</xmp:CreateDate>",
            f"   <xmp:ModifyDate>{stamp}</xmp:ModifyDate>",
            f"   <xmp:MetadataDate>{stamp}</xmp:MetadataDate>",
            f"   <pdf:Producer>{PRODUCER}</pdf:Producer>",
            "  </rdf:Description>",
            " </rdf:RDF>",
            "</x:xmpmeta>",
        )
    )


def pdf_title(doc: InvoiceDocument) -> str:
    return f"{doc.seller.legal_name}: {doc.kind.caption} {doc.number}"


def _address_lines(party: Party) -> list[str]:
    return [
        party.legal_name,
        party.address.street,
        f"{party.address.postal_code} {party.address.city}",
        party.address.country,
        f"VAT id: {party.vat_id}",
        f"Registration: {party.registration_id}",
        party.email,
    ]


def _grouped_iban(iban: str) -> str:
    return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))


def invoice_pdf(doc: InvoiceDocument, fonts: FontFiles) -> bytes:
    """A readable A4 invoice or credit note, PDF/A-3b in form (embedded
    fonts, sRGB output intent, XMP identification), the same bytes for the
    same document and fonts: every date in it is the issue date's."""
    pdf = FPDF(orientation="P", unit="mm", format="A4", enforce_compliance="PDFA_3B")
    pdf.set_creation_date(document_datetime(doc))
    pdf.set_producer(PRODUCER)
    pdf.set_creator(PRODUCER)
    pdf.set_title(pdf_title(doc))
    pdf.set_author(doc.seller.legal_name)
    pdf.set_lang("en")
    pdf.set_xmp_metadata(_pdf_xmp(doc, pdf_title(doc)))
    # Parsed once per process, not per document (producers/pdf_fonts.py).
    add_font(pdf, "DejaVu", "", str(fonts.regular))
    add_font(pdf, "DejaVu", "B", str(fonts.bold))
    pdf.set_margins(18, 18, 18)
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.alias_nb_pages()
    footer = (
        f"{doc.seller.legal_name} · VAT id {doc.seller.vat_id} · {doc.kind.caption} {doc.number}"
    )

    def page_footer() -> None:
        pdf.set_y(-14)
        pdf.set_font("DejaVu", "", 7)
        pdf.set_text_color(110)
        pdf.cell(0, 4, footer, align="L")
        pdf.set_x(pdf.l_margin)
        pdf.cell(0, 4, f"Page {pdf.page_no()} of {{nb}}", align="R")
        pdf.set_text_color(0)

    pdf.footer = page_footer  # type: ignore[method-assign]  # fpdf2's hook for a footer
    pdf.add_page()
    width = pdf.epw

    def money_of(value: Decimal) -> str:
        return money(value, doc.currency)

    # Seller (left) and the document's title and facts (right).
    top = pdf.get_y()
    pdf.set_font("DejaVu", "B", 12)
    pdf.cell(width / 2, 6, doc.seller.legal_name, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 8.5)
    for text in _address_lines(doc.seller)[1:]:
        pdf.cell(width / 2, 4.2, text, new_x="LMARGIN", new_y="NEXT")
    left_bottom = pdf.get_y()
    pdf.set_xy(pdf.l_margin + width / 2, top)
    pdf.set_font("DejaVu", "B", 18)
    pdf.cell(width / 2, 9, doc.kind.caption.upper(), align="R", new_x="LEFT", new_y="NEXT")
    facts = [
        ("Number", doc.number),
        ("Issue date", doc.issue_date.isoformat()),
        ("Due date", doc.due_date.isoformat()),
        ("Billing period", f"{doc.period_start.isoformat()} to {doc.period_end.isoformat()}"),
        ("Currency", doc.currency),
    ]
    if doc.corrects is not None:
        facts.append(
            ("Corrects invoice", f"{doc.corrects.number} of {doc.corrects.issue_date.isoformat()}")
        )
    for label, fact in facts:
        pdf.set_x(pdf.l_margin + width / 2)
        pdf.set_font("DejaVu", "", 8.5)
        pdf.cell(width / 4, 4.6, label, align="L")
        pdf.set_font("DejaVu", "B", 8.5)
        pdf.cell(width / 4, 4.6, fact, align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_y(max(left_bottom, pdf.get_y()) + 8)

    # Buyer.
    pdf.set_font("DejaVu", "B", 9)
    pdf.cell(0, 5, "Bill to", new_x="LMARGIN", new_y="NEXT")
    buyer = _address_lines(doc.buyer)
    pdf.set_font("DejaVu", "B", 10)
    pdf.cell(0, 5, buyer[0], new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 8.5)
    for text in buyer[1:]:
        pdf.cell(0, 4.2, text, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(7)

    # Lines.
    pdf.set_font("DejaVu", "", 8)
    pdf.set_draw_color(170)
    with pdf.table(
        col_widths=(7, 73, 20, 10, 18, 10, 24),
        text_align=("LEFT", "LEFT", "RIGHT", "LEFT", "RIGHT", "RIGHT", "RIGHT"),
        headings_style=FontFace(emphasis="BOLD", fill_color=(235, 235, 235)),
        line_height=4.6,
        padding=1.2,
        borders_layout="HORIZONTAL_LINES",
    ) as table:
        table.row(("#", "Description", "Quantity", "Unit", "Unit price", "VAT", "Net amount"))
        for line in doc.lines:
            table.row(
                (
                    line.line_id,
                    line.description,
                    decimal_text(line.quantity),
                    line.unit_code.label,
                    decimal_text(line.unit_price),
                    f"{percent(line.vat_rate)} %",
                    money_of(line.net_amount),
                )
            )
    pdf.ln(6)

    # VAT breakdown (left) and totals (right).
    with pdf.table(
        width=width * 0.55,
        align="LEFT",
        col_widths=(18, 10, 22, 22),
        text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT"),
        headings_style=FontFace(emphasis="BOLD", fill_color=(235, 235, 235)),
        line_height=4.6,
        padding=1.2,
        borders_layout="HORIZONTAL_LINES",
    ) as table:
        table.row(("VAT category", "Rate", "Taxable amount", "VAT amount"))
        for entry in doc.vat_breakdown:
            table.row(
                (
                    f"{entry.category} (standard)",
                    f"{percent(entry.rate)} %",
                    money_of(entry.taxable_amount),
                    money_of(entry.tax_amount),
                )
            )
    pdf.ln(4)
    due_label = "Amount due" if doc.kind is DocumentKind.INVOICE else "Amount credited"
    totals: list[tuple[str, Decimal]] = [
        ("Net total (excl. VAT)", doc.net_total),
        ("VAT total", doc.vat_total),
        ("Gross total (incl. VAT)", doc.gross_total),
        (due_label, doc.amount_due),
    ]
    for index, (label, value) in enumerate(totals):
        last = index == len(totals) - 1
        pdf.set_x(pdf.l_margin + width * 0.55)
        pdf.set_font("DejaVu", "B" if last else "", 10 if last else 9)
        pdf.cell(width * 0.27, 5.5, label, align="L", border="T" if last else 0)
        pdf.cell(width * 0.18, 5.5, money_of(value), align="R", border="T" if last else 0)
        pdf.ln(5.5)
    pdf.ln(8)

    # Payment.
    pdf.set_font("DejaVu", "B", 9)
    pdf.cell(0, 5, "Payment", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 8.5)
    if doc.kind is DocumentKind.INVOICE:
        how = (
            f"Please pay {money_of(doc.amount_due)} by {doc.due_date.isoformat()} by credit "
            f"transfer to IBAN {_grouped_iban(doc.payment_means.iban)}, BIC "
            f"{doc.payment_means.bic}, quoting {doc.number}."
        )
    else:
        corrected = doc.corrects.number if doc.corrects else ""
        how = (
            f"We credit {money_of(doc.amount_due)} against invoice {corrected} "
            f"by {doc.due_date.isoformat()}."
        )
    pdf.multi_cell(0, 4.4, f"{doc.payment_terms}\n{how}", align="L", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


# --- the e-invoice: the PDF with its XML, PDF/A-3 (Factur-X) -------------------------------

_XMP_DATES = re.compile(rb"(<xmp:(?:CreateDate|ModifyDate|MetadataDate)>)[^<]*(</xmp:)")


def facturx_pdf(doc: InvoiceDocument, fonts: FontFiles) -> bytes:
    """The EN 16931 e-invoice: ``invoice_pdf`` with ``invoice_xml`` embedded
    as ``factur-x.xml`` (relationship Data, XMP Factur-X extension schema),
    built by the ``factur-x`` package, which checks the XML against the
    official XSD first. That package stamps the clock in three places (the
    Info dictionary's dates, the XMP dates and the attachment's ModDate);
    each is rewritten here to the document's own instant, so the bytes
    depend on the document alone (docs/adr/0037)."""
    title = pdf_title(doc)
    hybrid = facturx.generate_from_binary(
        invoice_pdf(doc, fonts),
        invoice_xml(doc),
        flavor="factur-x",
        level="en16931",
        check_xsd=True,
        pdf_metadata={
            "author": doc.seller.legal_name,
            "keywords": f"{doc.kind.caption}, Factur-X",
            "title": title,
            "subject": f"{doc.kind.caption} {doc.number} of {doc.issue_date.isoformat()} "
            f"to {doc.buyer.legal_name}",
        },
        lang="en",
    )
    return _pin_dates(hybrid, document_datetime(doc))


def _pin_dates(pdf_bytes: bytes, instant: datetime) -> bytes:
    pdf_date = instant.astimezone(UTC).strftime("D:%Y%m%d%H%M%S+00'00'")
    xmp_date = instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00").encode()
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes)))
    # PDF/A-3 is built on PDF 1.7 (ISO 32000-1), the version fpdf2 wrote;
    # factur-x says 1.6 and a plain clone would say 1.3.
    writer.pdf_header = "%PDF-1.7"
    writer.add_metadata({"/CreationDate": pdf_date, "/ModDate": pdf_date})
    root = writer.root_object
    metadata = cast(StreamObject, root["/Metadata"].get_object())
    metadata.set_data(_XMP_DATES.sub(rb"\g<1>" + xmp_date + rb"\g<2>", metadata.get_data()))
    names = cast(DictionaryObject, root["/Names"].get_object())
    attached = cast(DictionaryObject, names["/EmbeddedFiles"].get_object())
    for filespec in cast(ArrayObject, attached["/Names"])[1::2]:
        ef = cast(DictionaryObject, cast(DictionaryObject, filespec.get_object())["/EF"])
        embedded = cast(StreamObject, ef["/F"].get_object())
        params = cast(DictionaryObject, embedded["/Params"].get_object())
        params[NameObject("/ModDate")] = TextStringObject(pdf_date)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
