"""The practitioner directory (RPPS, ADELI, PSI and other identities, from the national
extract, psc.md §8, §10), stored relationally: a practitioner, their other identifiers,
their exercices (one per profession), each with its savoir-faire and its activities (one
per place of practice, structure data inline). Which extract column fills which attribute:
``columns.py``.

Keys are natural: the idNat, then ranks in file order. Rows of one practitioner can thus be
written and deleted in bulk without reading generated ids back, and every child table is
indexed by idNat through its primary key. Structure data is kept on the activity, as in
the extract: the directory is replaced practitioner by practitioner, and sharing
structure rows between practitioners would tie their updates together.

Not stored (data minimisation): birth date and place, sex. No claim and no login step
uses them. Phone and e-mail are kept: e-CPS activation sends codes to them (psc.md §6).

Beside these tables, ``ProfessionalDocument`` keeps each active practitioner's ``scope_all``
claims ready to serve (``document.py``): userinfo reads one row, not five tables."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    String,
    Text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .identifiers import ID_NAT_MAX_LENGTH

ID_NAT = String(ID_NAT_MAX_LENGTH)


class Practitioner(db.Model):
    """A health professional, identified by their idNat; ``active`` is false once they
    left the directory (a full extract without them): they can no longer log in."""

    __tablename__ = "directory_practitioner"

    id_nat: Mapped[str] = mapped_column(ID_NAT, primary_key=True)
    #: as in the extract: a type prefix (8 RPPS, 0 ADELI…), or empty (PSI identities)
    id_type: Mapped[str] = mapped_column(Text)
    identifier: Mapped[str] = mapped_column(Text)
    civilite: Mapped[str] = mapped_column(Text, default="")
    family_name: Mapped[str] = mapped_column(Text, default="")
    #: first names as in the extract, separated by apostrophes ("PIERRE'DANIEL'PATRICK")
    given_names: Mapped[str] = mapped_column(Text, default="")
    phone: Mapped[str] = mapped_column(Text, default="")
    email: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    #: the practitioner this former idNat continues as (``links``), once it left the extract
    successor_id_nat: Mapped[str | None] = mapped_column(ID_NAT, index=True)
    #: sha256 of the stored content, to tell updated practitioners from unchanged ones
    digest: Mapped[str] = mapped_column(String(64))
    #: the import that last saw this practitioner (full extracts deactivate the others)
    last_import_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)

    exercices: Mapped[list[Exercice]] = relationship(
        order_by="Exercice.rank", back_populates="practitioner", cascade="all, delete-orphan")
    other_ids: Mapped[list[OtherId]] = relationship(
        order_by="OtherId.rank", cascade="all, delete-orphan")

    @property
    def given_name(self) -> str:
        """The first of the first names (PSC's ``given_name``)."""
        return self.given_names.split("'")[0]

    def __repr__(self) -> str:
        return f"<Practitioner {self.id_nat}{'' if self.active else ' (inactive)'}>"


class OtherId(db.Model):
    """An identifier of the same person, from the extract's ``Autres identifiants``
    (psc.md §10): the identifier (an idNat), its origin (RPPS, ADELI, PSI…) and quality."""

    __tablename__ = "directory_other_id"

    id_nat: Mapped[str] = mapped_column(
        ID_NAT, ForeignKey(Practitioner.id_nat, ondelete="CASCADE"), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    identifier: Mapped[str] = mapped_column(Text, index=True)
    origin: Mapped[str] = mapped_column(Text, default="")
    quality: Mapped[int | None] = mapped_column(Integer)


class Exercice(db.Model):
    """One profession of a practitioner, with the name and title used to practise it."""

    __tablename__ = "directory_exercice"

    id_nat: Mapped[str] = mapped_column(
        ID_NAT, ForeignKey(Practitioner.id_nat, ondelete="CASCADE"), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    profession: Mapped[str] = mapped_column(Text, default="")
    categorie: Mapped[str] = mapped_column(Text, default="")
    civilite_exercice: Mapped[str] = mapped_column(Text, default="")
    family_name: Mapped[str] = mapped_column(Text, default="")
    given_name: Mapped[str] = mapped_column(Text, default="")

    practitioner: Mapped[Practitioner] = relationship(back_populates="exercices")
    savoir_faire: Mapped[list[SavoirFaire]] = relationship(
        order_by="SavoirFaire.rank", cascade="all, delete-orphan")
    activities: Mapped[list[Activity]] = relationship(
        order_by="Activity.rank", cascade="all, delete-orphan")


def _exercice_key() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["id_nat", "exercice_rank"], ["directory_exercice.id_nat", "directory_exercice.rank"],
        ondelete="CASCADE")


class SavoirFaire(db.Model):
    """A qualification attached to an exercice (type TRE_R04, code e.g. TRE_R38)."""

    __tablename__ = "directory_savoir_faire"
    __table_args__ = (_exercice_key(),)

    id_nat: Mapped[str] = mapped_column(ID_NAT, primary_key=True)
    exercice_rank: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    type_code: Mapped[str] = mapped_column(Text, default="")
    code: Mapped[str] = mapped_column(Text, default="")


class Activity(db.Model):
    """One place of practice of an exercice: how (mode, sector, role) and where (the
    structure, with its identifiers and address, as the extract gives them)."""

    __tablename__ = "directory_activity"
    __table_args__ = (_exercice_key(),)

    id_nat: Mapped[str] = mapped_column(ID_NAT, primary_key=True)
    exercice_rank: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    mode_exercice: Mapped[str] = mapped_column(Text, default="")
    secteur_activite: Mapped[str] = mapped_column(Text, default="")
    section_pharmacien: Mapped[str] = mapped_column(Text, default="")
    role: Mapped[str] = mapped_column(Text, default="")
    #: TRE_R22, from the extract's ``Code genre activité`` column (GENR01 when it has none)
    genre_activite: Mapped[str] = mapped_column(Text, default="")
    siret: Mapped[str] = mapped_column(Text, default="")
    siren: Mapped[str] = mapped_column(Text, default="")
    finess_site: Mapped[str] = mapped_column(Text, default="")
    finess_juridique: Mapped[str] = mapped_column(Text, default="")
    structure_id: Mapped[str] = mapped_column(Text, default="")
    raison_sociale: Mapped[str] = mapped_column(Text, default="")
    enseigne: Mapped[str] = mapped_column(Text, default="")
    complement_destinataire: Mapped[str] = mapped_column(Text, default="")
    complement_geographique: Mapped[str] = mapped_column(Text, default="")
    numero_voie: Mapped[str] = mapped_column(Text, default="")
    indice_repetition: Mapped[str] = mapped_column(Text, default="")
    type_voie: Mapped[str] = mapped_column(Text, default="")
    libelle_voie: Mapped[str] = mapped_column(Text, default="")
    mention_distribution: Mapped[str] = mapped_column(Text, default="")
    bureau_cedex: Mapped[str] = mapped_column(Text, default="")
    code_postal: Mapped[str] = mapped_column(Text, default="")
    code_commune: Mapped[str] = mapped_column(Text, default="")
    code_pays: Mapped[str] = mapped_column(Text, default="")
    telephone: Mapped[str] = mapped_column(Text, default="")
    telephone2: Mapped[str] = mapped_column(Text, default="")
    telecopie: Mapped[str] = mapped_column(Text, default="")
    email: Mapped[str] = mapped_column(Text, default="")
    code_departement: Mapped[str] = mapped_column(Text, default="")
    ancien_identifiant: Mapped[str] = mapped_column(Text, default="")
    autorite_enregistrement: Mapped[str] = mapped_column(Text, default="")


class ProfessionalDocument(db.Model):
    """The ``scope_all`` claims of an active practitioner (psc.md §3), as JSON text in claim
    order, written with their rows by every import (``writer``) and deleted when they are
    deactivated or linked: a row exists exactly for the active practitioners."""

    __tablename__ = "directory_document"

    id_nat: Mapped[str] = mapped_column(
        ID_NAT, ForeignKey(Practitioner.id_nat, ondelete="CASCADE"), primary_key=True)
    claims: Mapped[str] = mapped_column(Text)


class DirectoryImport(db.Model):
    """One run of ``psc-idp directory import`` or ``sync`` on one file, with its figures.
    A sync commits ``checkpoint_line`` (the last line applied) and the figures with each
    batch, and sets ``read_at`` once the whole file is applied: an interrupted sync of the
    same file (``file_sha256``) resumes from there."""

    __tablename__ = "directory_import"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    full: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[int] = mapped_column(BigInteger)
    finished_at: Mapped[int | None] = mapped_column(BigInteger)
    lines: Mapped[int] = mapped_column(Integer, default=0)
    imported: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    deactivated: Mapped[int] = mapped_column(Integer, default=0)
    linked: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rejected_lines: Mapped[int] = mapped_column(Integer, default=0)
    warnings: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    file_sha256: Mapped[str | None] = mapped_column(String(64))
    checkpoint_line: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    read_at: Mapped[int | None] = mapped_column(BigInteger)
