"""Invoice documents (producers/invoice_documents.py, docs/adr/0037): the
figures a document refuses, the CSV, the EN 16931 XML against the official
XSD and schematron, the PDF and the Factur-X PDF byte for byte, and the
PDF's text as pdftotext reads it."""

from __future__ import annotations

import csv
import importlib.resources
import io
import re
import shutil
import subprocess
import sys
import time
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import facturx  # type: ignore[import-untyped]
import pytest
from lxml import etree
from pydantic import ValidationError
from pypdf import PdfReader
from saxonche import PySaxonProcessor

from ocpi_hub.settings import Settings
from producers.invoice_documents import (
    CII_NAMESPACES,
    CreditTransfer,
    DocumentKind,
    FontFiles,
    InvoiceDocument,
    InvoiceLine,
    InvoiceReference,
    Party,
    PostalAddress,
    UnitCode,
    VatBreakdown,
    facturx_pdf,
    invoice_csv,
    invoice_pdf,
    invoice_xml,
    seller_from,
)

D = Decimal


def buyer() -> Party:
    return Party(
        legal_name="Müller Flotten GmbH",
        address=PostalAddress(
            street="Hauptstraße 5", postal_code="10115", city="Berlin", country="DE"
        ),
        vat_id="DE136695976",
        registration_id="HRB12345",
        email="rechnung@mueller.example",
    )


def lines() -> tuple[InvoiceLine, ...]:
    return (
        # 12 charges rounded once each: 123.456 kWh x 0.35 = 43.2096, billed 43.21.
        InvoiceLine(
            line_id="1",
            description="Charging, member Jane Doe, cost centre FLEET-1, 12 sessions",
            quantity=D("123.456"),
            unit_code=UnitCode.KWH,
            unit_price=D("0.35"),
            net_amount=D("43.21"),
            vat_rate=D("0.21"),
            charges=12,
        ),
        InvoiceLine(
            line_id="2",
            description="Charging, member Łukasz Żółć, 3 sessions",
            quantity=D("40.000"),
            unit_code=UnitCode.KWH,
            unit_price=D("0.35"),
            net_amount=D("14.00"),
            vat_rate=D("0.21"),
            charges=3,
        ),
        InvoiceLine(
            line_id="3",
            description="Monthly member fee, 2 members",
            quantity=D("2"),
            unit_code=UnitCode.C62,
            unit_price=D("5.00"),
            net_amount=D("10.00"),
            vat_rate=D("0.21"),
        ),
    )


def figures(**changes: Any) -> dict[str, Any]:
    """A consistent invoice, worked out by hand: lines 43.21 + 14.00 + 10.00
    = 67.21 net; 21 % of 67.21 = 14.1141 -> 14.11 VAT; 81.32 gross."""
    seller, means = seller_from(Settings())
    values: dict[str, Any] = {
        "kind": DocumentKind.INVOICE,
        "number": "INV-2026-000042",
        "issue_date": date(2026, 12, 1),
        "due_date": date(2026, 12, 31),
        "period_start": date(2026, 11, 1),
        "period_end": date(2026, 11, 30),
        "currency": "EUR",
        "seller": seller,
        "buyer": buyer(),
        "payment_terms": "Payable within 30 days of the invoice date, without deduction.",
        "payment_means": means,
        "lines": lines(),
        "vat_breakdown": (
            VatBreakdown(rate=D("0.21"), taxable_amount=D("67.21"), tax_amount=D("14.11")),
        ),
        "net_total": D("67.21"),
        "vat_total": D("14.11"),
        "gross_total": D("81.32"),
        "amount_due": D("81.32"),
    }
    values.update(changes)
    return values


def invoice(**changes: Any) -> InvoiceDocument:
    return InvoiceDocument(**figures(**changes))


def credit_note() -> InvoiceDocument:
    """A refund of 10 kWh of the invoice above: 3.50 net, 0.74 VAT (0.735 half up)."""
    return invoice(
        kind=DocumentKind.CREDIT_NOTE,
        number="CN-2026-000007",
        issue_date=date(2026, 12, 10),
        due_date=date(2026, 12, 24),
        corrects=InvoiceReference(number="INV-2026-000042", issue_date=date(2026, 12, 1)),
        lines=(
            InvoiceLine(
                line_id="1",
                description="Refund: session 2026-11-14, member Jane Doe",
                quantity=D("10"),
                unit_code=UnitCode.KWH,
                unit_price=D("0.35"),
                net_amount=D("3.50"),
                vat_rate=D("0.21"),
            ),
        ),
        vat_breakdown=(
            VatBreakdown(rate=D("0.21"), taxable_amount=D("3.50"), tax_amount=D("0.74")),
        ),
        net_total=D("3.50"),
        vat_total=D("0.74"),
        gross_total=D("4.24"),
        amount_due=D("4.24"),
    )


@pytest.fixture(scope="module")
def fonts() -> FontFiles:
    settings = Settings()
    return FontFiles(
        regular=Path(settings.billing_pdf_font_regular), bold=Path(settings.billing_pdf_font_bold)
    )


# --- the figures a document refuses ------------------------------------------------------


def test_a_consistent_invoice_and_credit_note_are_built() -> None:
    assert invoice().kind.type_code == "380"
    assert credit_note().kind.type_code == "381"


def with_line(index: int, **changes: Any) -> tuple[InvoiceLine, ...]:
    current = list(lines())
    current[index] = current[index].model_copy(update=changes)
    return tuple(current)


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        ({"net_total": D("67.20")}, "BR-CO-10"),
        ({"gross_total": D("81.33"), "amount_due": D("81.33")}, "BR-CO-15"),
        (
            {"vat_total": D("14.12"), "gross_total": D("81.33"), "amount_due": D("81.33")},
            "BR-CO-14",
        ),
        ({"amount_due": D("80.00")}, "BR-CO-16"),
        (
            {
                "vat_breakdown": (
                    VatBreakdown(rate=D("0.21"), taxable_amount=D("67.21"), tax_amount=D("14.12")),
                ),
                "vat_total": D("14.12"),
                "gross_total": D("81.33"),
                "amount_due": D("81.33"),
            },
            "BR-S-09",
        ),
        (
            {
                "vat_breakdown": (
                    VatBreakdown(rate=D("0.19"), taxable_amount=D("67.21"), tax_amount=D("12.77")),
                ),
                "vat_total": D("12.77"),
                "gross_total": D("79.98"),
                "amount_due": D("79.98"),
            },
            "BR-S-08",
        ),
        ({"corrects": InvoiceReference(number="X", issue_date=date(2026, 1, 1))}, "BR-55"),
        ({"kind": DocumentKind.CREDIT_NOTE}, "BR-55"),
        ({"period_end": date(2026, 10, 31)}, "BR-29"),
        ({"due_date": date(2026, 11, 30)}, "due date"),
        ({"lines": with_line(1, line_id="1")}, "BR-21"),
        # 40 kWh x 0.35 = 14.00; 14.02 is beyond 3 charges' half cents.
        ({"lines": with_line(1, net_amount=D("14.02"))}, "rounding"),
    ],
)
def test_figures_that_disagree_are_refused_naming_the_rule(
    changes: dict[str, Any], rule: str
) -> None:
    with pytest.raises(ValidationError, match=rule):
        invoice(**changes)


def test_a_line_within_its_charges_rounding_is_accepted_and_one_beyond_is_not() -> None:
    # 40 kWh x 0.3503 = 14.012: 1.2 cents from 14.00, within three charges'
    # half cents (1.5), beyond one charge's (0.5).
    invoice(lines=with_line(1, unit_price=D("0.3503"), net_amount=D("14.00"), charges=3))
    with pytest.raises(ValidationError, match="rounding"):
        invoice(lines=with_line(1, unit_price=D("0.3503"), net_amount=D("14.00"), charges=1))


def test_amounts_with_more_than_two_decimals_are_refused() -> None:
    with pytest.raises(ValidationError):
        invoice(net_total=D("67.210001"))


def test_the_seller_comes_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCPI_HUB_BILLING_SELLER_LEGAL_NAME", "Hub Energy B.V.")
    monkeypatch.setenv("OCPI_HUB_BILLING_SELLER_IBAN", "NL91 ABNA 0417 1643 00")
    party, means = seller_from(Settings())
    assert party.legal_name == "Hub Energy B.V."
    assert means == CreditTransfer(iban="NL91ABNA0417164300", bic="ABNANL2A")


# --- CSV ----------------------------------------------------------------------------------


def test_the_csv_has_a_header_and_the_lines_in_order_as_plain_decimals() -> None:
    data = invoice_csv(invoice())
    assert (
        data
        == (
            "document_number,line_id,description,quantity,unit_code,unit_price,vat_category,"
            "vat_rate_percent,net_amount,currency\r\n"
            'INV-2026-000042,1,"Charging, member Jane Doe, cost centre FLEET-1, 12 sessions",'
            "123.456,KWH,0.35,S,21,43.21,EUR\r\n"
            'INV-2026-000042,2,"Charging, member Łukasz Żółć, 3 sessions",'
            "40.000,KWH,0.35,S,21,14.00,EUR\r\n"
            'INV-2026-000042,3,"Monthly member fee, 2 members",2,C62,5.00,S,21,10.00,EUR\r\n'
        ).encode()
    )
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))
    assert sum(D(row["net_amount"]) for row in rows) == invoice().net_total


# --- EN 16931 XML -------------------------------------------------------------------------


def xpath(xml: bytes, path: str) -> list[str]:
    found = etree.fromstring(xml).xpath(path, namespaces=CII_NAMESPACES)
    assert isinstance(found, list)
    return [str(item) for item in found]


@pytest.mark.parametrize("make", [invoice, credit_note])
def test_the_xml_is_valid_against_the_official_xsd(make: Any) -> None:
    assert facturx.xml_check_xsd(invoice_xml(make()), flavor="factur-x", level="en16931")


def test_an_xml_the_xsd_refuses_is_refused() -> None:
    # The check can fail: a required element (BT-5) taken out.
    root = etree.fromstring(invoice_xml(invoice()))
    for element in root.iter(f"{{{CII_NAMESPACES['ram']}}}InvoiceCurrencyCode"):
        element.getparent().remove(element)  # type: ignore[union-attr]
    with pytest.raises(Exception, match="not valid against the official"):
        facturx.xml_check_xsd(etree.tostring(root), flavor="factur-x", level="en16931")


SVRL = "http://purl.oclc.org/dsdl/svrl"
SCHEMATRON = importlib.resources.files("facturx").joinpath(
    "xsd_and_schematron/facturx-en16931/FACTUR-X_EN16931.xslt"
)


def schematron_failures(xml: bytes) -> list[tuple[str, str]]:
    """(rule id, flag) of each failed assertion of the EN 16931 schematron
    that the factur-x package ships (compiled XSLT 2.0, run by Saxon-HE)."""
    with PySaxonProcessor(license=False) as saxon:
        stylesheet = saxon.new_xslt30_processor().compile_stylesheet(
            stylesheet_file=str(SCHEMATRON)
        )
        report = stylesheet.transform_to_string(xdm_node=saxon.parse_xml(xml_text=xml.decode()))
    assert report and "schematron-output" in report
    svrl = etree.fromstring(report.encode())
    fired = svrl.findall(f"{{{SVRL}}}fired-rule")
    assert len(fired) > 50  # the rules did run on this document
    return [
        # The CEN rules carry no flag (errors); Peppol's say "warning".
        (str(failure.get("id")), failure.get("flag") or "error")
        for failure in svrl.iter(f"{{{SVRL}}}failed-assert")
    ]


@pytest.mark.parametrize("make", [invoice, credit_note])
def test_the_xml_passes_the_en16931_schematron(make: Any) -> None:
    assert schematron_failures(invoice_xml(make())) == []


def test_the_schematron_catches_totals_that_disagree() -> None:
    # The document refuses such figures itself; here the XML is altered
    # after rendering, to show the schematron run can fail.
    xml = invoice_xml(invoice()).replace(
        b"<ram:GrandTotalAmount>81.32<", b"<ram:GrandTotalAmount>81.33<"
    )
    assert ("BR-CO-15", "error") in schematron_failures(xml)


def test_the_xml_carries_the_figures_and_business_terms() -> None:
    xml = invoice_xml(invoice())
    summation = "//ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:"
    assert xpath(xml, "//rsm:ExchangedDocument/ram:ID/text()") == ["INV-2026-000042"]
    assert xpath(xml, "//rsm:ExchangedDocument/ram:TypeCode/text()") == ["380"]
    assert xpath(xml, f"{summation}LineTotalAmount/text()") == ["67.21"]
    assert xpath(xml, f"{summation}TaxTotalAmount/text()") == ["14.11"]
    assert xpath(xml, f"{summation}TaxTotalAmount/@currencyID") == ["EUR"]
    assert xpath(xml, f"{summation}GrandTotalAmount/text()") == ["81.32"]
    assert xpath(xml, f"{summation}DuePayableAmount/text()") == ["81.32"]
    line_nets = xpath(
        xml, "//ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount/text()"
    )
    assert sum(D(n) for n in line_nets) == D("67.21")  # BR-CO-10 in the XML itself
    assert xpath(xml, "//ram:BilledQuantity/@unitCode") == ["KWH", "KWH", "C62"]
    assert xpath(xml, "//ram:IBANID/text()") == ["NL91ABNA0417164300"]
    assert xpath(xml, "//ram:SellerTradeParty/ram:SpecifiedTaxRegistration/ram:ID/text()") == [
        "NL000099998B57"
    ]
    assert xpath(xml, "//ram:BuyerTradeParty/ram:Name/text()") == ["Müller Flotten GmbH"]
    assert xpath(xml, "//ram:InvoiceReferencedDocument") == []


def test_a_credit_note_names_the_invoice_it_corrects() -> None:
    xml = invoice_xml(credit_note())
    assert xpath(xml, "//rsm:ExchangedDocument/ram:TypeCode/text()") == ["381"]
    reference = "//ram:InvoiceReferencedDocument/"
    assert xpath(xml, f"{reference}ram:IssuerAssignedID/text()") == ["INV-2026-000042"]
    assert xpath(xml, f"{reference}ram:FormattedIssueDateTime/qdt:DateTimeString/text()") == [
        "20261201"
    ]


# --- PDF and Factur-X PDF, byte for byte ------------------------------------------------------

RENDER_IN_ANOTHER_PROCESS = """
import hashlib, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import test_invoice_documents as t
from producers.invoice_documents import FontFiles, facturx_pdf, invoice_pdf
fonts = FontFiles(regular=Path(sys.argv[2]), bold=Path(sys.argv[3]))
print(hashlib.sha256(invoice_pdf(t.invoice(), fonts)).hexdigest())
print(hashlib.sha256(facturx_pdf(t.invoice(), fonts)).hexdigest())
"""


def test_the_pdfs_are_the_same_bytes_every_time(fonts: FontFiles) -> None:
    import hashlib

    first_pdf, first_fx = invoice_pdf(invoice(), fonts), facturx_pdf(invoice(), fonts)
    time.sleep(1.1)  # the files' dates have seconds: a clock stamp would show
    assert invoice_pdf(invoice(), fonts) == first_pdf
    assert facturx_pdf(invoice(), fonts) == first_fx
    # Another process with another hash seed (set and dict orders) too.
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            RENDER_IN_ANOTHER_PROCESS,
            str(Path(__file__).parent),
            str(fonts.regular),
            str(fonts.bold),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"},
        cwd=Path(__file__).parents[2],
    ).stdout.split()
    assert out == [hashlib.sha256(first_pdf).hexdigest(), hashlib.sha256(first_fx).hexdigest()]
    # And another document gives other bytes.
    assert facturx_pdf(credit_note(), fonts) != first_fx


def test_the_pdf_embeds_its_fonts_and_says_pdfa3(fonts: FontFiles) -> None:
    pdf = invoice_pdf(invoice(), fonts)
    assert pdf.startswith(b"%PDF-1.7")
    reader = PdfReader(io.BytesIO(pdf))
    page_fonts = reader.pages[0]["/Resources"]["/Font"]
    for ref in page_fonts.values():
        descendant = ref.get_object()["/DescendantFonts"][0].get_object()
        assert "/FontFile2" in descendant["/FontDescriptor"]  # embedded TrueType
        assert "DejaVuSans" in descendant["/BaseFont"]
    root = reader.trailer["/Root"]
    assert root["/OutputIntents"][0].get_object()["/S"] == "/GTS_PDFA1"
    xmp = root["/Metadata"].get_object().get_data().decode()
    assert "<pdfaid:part>3</pdfaid:part>" in xmp
    assert "<xmp:CreateDate>2026-12-01T00:00:00+00:00</xmp:CreateDate>" in xmp


@pytest.mark.parametrize("make", [invoice, credit_note])
def test_the_facturx_pdf_carries_the_xml_that_passes_the_xsd(make: Any, fonts: FontFiles) -> None:
    doc = make()
    pdf = facturx_pdf(doc, fonts)
    name, xml = facturx.get_xml_from_pdf(pdf, check_xsd=True)
    assert name == "factur-x.xml"
    assert xml == invoice_xml(doc)
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    reader = PdfReader(io.BytesIO(pdf))
    stamp = doc.issue_date.strftime("D:%Y%m%d000000+00'00'")
    assert reader.metadata is not None
    assert reader.metadata["/CreationDate"] == stamp
    assert reader.metadata["/ModDate"] == stamp
    xmp = reader.trailer["/Root"]["/Metadata"].get_object().get_data().decode()
    assert "<pdfaid:part>3</pdfaid:part>" in xmp
    assert "<fx:ConformanceLevel>EN 16931</fx:ConformanceLevel>" in xmp
    assert (
        re.findall(r"<xmp:\w+Date>([^<]*)<", xmp)
        == [doc.issue_date.isoformat() + "T00:00:00+00:00"] * 2
    )
    names = reader.trailer["/Root"]["/Names"]["/EmbeddedFiles"]["/Names"]
    params = names[1].get_object()["/EF"]["/F"].get_object()["/Params"]
    assert params["/ModDate"] == stamp
    assert reader.trailer["/Root"]["/AF"][0].get_object()["/AFRelationship"] == "/Data"


# --- what pdftotext reads (the issue's e2e checks the PDF this way) -------------------------


def pdftotext(pdf: bytes) -> str:
    binary = shutil.which("pdftotext")
    assert binary, "pdftotext is missing: `make up` installs Debian's poppler-utils"
    return subprocess.run(
        [binary, "-layout", "-enc", "UTF-8", "-", "-"],
        input=pdf,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode("utf-8")


def test_pdftotext_finds_the_number_buyer_and_totals(fonts: FontFiles) -> None:
    text = pdftotext(facturx_pdf(invoice(), fonts))
    assert "INVOICE" in text
    assert "INV-2026-000042" in text
    assert "Müller Flotten GmbH" in text
    assert "DE136695976" in text
    assert "2026-11-01 to 2026-11-30" in text
    assert re.search(r"Net total \(excl\. VAT\)\s+€ 67\.21", text)
    assert re.search(r"VAT total\s+€ 14\.11", text)
    assert re.search(r"Gross total \(incl\. VAT\)\s+€ 81\.32", text)
    assert re.search(r"Amount due\s+€ 81\.32", text)
    assert "Łukasz Żółć" in text
    assert "NL91 ABNA 0417 1643 00" in text


def test_pdftotext_reads_a_credit_note_and_its_reference(fonts: FontFiles) -> None:
    text = pdftotext(facturx_pdf(credit_note(), fonts))
    assert "CREDIT NOTE" in text
    assert "CN-2026-000007" in text
    assert re.search(r"Corrects invoice\s+INV-2026-000042 of 2026-12-01", text)
    assert re.search(r"Amount credited\s+€ 4\.24", text)
