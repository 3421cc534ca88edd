"""An issued invoice's files (issue 14, part D; docs/adr/0040): the Factur-X
PDF, the EN 16931 XML and the CSV of the lines, as the ops API serves them
and the billing worker attaches them.

They are rendered from the invoice's source as the billing slice's state
keeps it (``producers.billing.state.InvoiceSource``: the ``InvoiceDrafted`` and
``InvoiceIssued`` payloads as recorded), through
``invoice_mapping.document_of`` and the renderers of
``invoice_documents``. Pure and blocking: rendering a PDF takes a tenth of
a second or more of CPU, so the shells run it in a thread.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from producers.billing.credit_notes import CreditNoteSource
from producers.billing.state import InvoiceSource
from producers.invoice_documents import (
    CreditTransfer,
    FontFiles,
    InvoiceDocument,
    Party,
    facturx_pdf,
    invoice_csv,
    invoice_xml,
)
from producers.invoice_mapping import credit_note_document_of, document_of


class FileKind(StrEnum):
    """What ``GET /ops/invoices/{id}/{kind}`` serves."""

    PDF = "pdf"  # the Factur-X PDF: readable, PDF/A-3 with the XML inside
    XML = "xml"  # the EN 16931 CII XML alone
    CSV = "csv"  # the lines

    @property
    def media_type(self) -> str:
        return {
            FileKind.PDF: "application/pdf",
            FileKind.XML: "application/xml",
            FileKind.CSV: "text/csv; charset=utf-8",
        }[self]


@dataclass(frozen=True)
class InvoiceFile:
    content: bytes
    kind: FileKind
    filename: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass(frozen=True)
class InvoiceRenderer:
    """Our side of every document (the seller, its account, the fonts)."""

    seller: Party
    means: CreditTransfer
    fonts: FontFiles

    @classmethod
    def of(
        cls, seller: tuple[Party, CreditTransfer], regular_font: str, bold_font: str
    ) -> InvoiceRenderer:
        party, means = seller
        return cls(party, means, FontFiles(regular=Path(regular_font), bold=Path(bold_font)))

    def document(self, source: InvoiceSource) -> InvoiceDocument:
        if source.issued is None:
            raise ValueError(f"invoice {source.drafted.invoice_id} is not issued")
        return document_of(source.drafted, source.issued, self.seller, self.means)

    def render(self, source: InvoiceSource, kind: FileKind) -> InvoiceFile:
        """One file of an issued invoice (blocking; CPU-heavy for the PDF)."""
        return self.file(self.document(source), kind)

    def credit_note_document(self, source: CreditNoteSource) -> InvoiceDocument:
        return credit_note_document_of(
            source.invoice, source.requested, source.issued, self.seller, self.means
        )

    def render_credit_note(self, source: CreditNoteSource, kind: FileKind) -> InvoiceFile:
        """One file of an issued credit note (type 381, naming the invoice it
        corrects): the same renderers as an invoice's (docs/adr/0041, 12)."""
        return self.file(self.credit_note_document(source), kind)

    def file(self, doc: InvoiceDocument, kind: FileKind) -> InvoiceFile:
        if kind is FileKind.PDF:
            content = facturx_pdf(doc, self.fonts)
        elif kind is FileKind.XML:
            content = invoice_xml(doc)
        else:
            content = invoice_csv(doc)
        return InvoiceFile(content, kind, file_name(doc, kind))


def file_name(doc: InvoiceDocument, kind: FileKind) -> str:
    """``invoice-2026-000001.pdf``, ``credit-note-CN-2026-000001.pdf``: the
    number names the download and the attachment (numbers are letters,
    digits and dashes: nothing to escape)."""
    return f"{doc.kind.caption.lower().replace(' ', '-')}-{doc.number}.{kind.value}"
