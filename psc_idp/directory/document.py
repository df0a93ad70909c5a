"""Each active practitioner's ``scope_all`` claims stored ready to serve (psc.md §3): one
``directory_document`` row of JSON text, in claim order (``ProfessionalDocument``), so that
userinfo reads one row instead of five tables.

- Built when an import writes the practitioner (``writer``), from the values it parsed
  (``builder``), not from the tables it just wrote.
- Deleted when the practitioner is deactivated or linked to a successor (``forget``); an
  extract that lists them again writes them, and their document, again.
- ``rebuild`` builds every document again from the directory tables: the migration that
  introduced them runs it, and so must any migration that changes their shape
  (``claims.document``); ``psc-idp directory rebuild-claims`` runs it by hand."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from operator import itemgetter

from sqlalchemy import Connection, delete, select, true

from .claims import ACTIVITY_ATTRS, EXERCICE_ATTRS, SAVOIR_FAIRE_ATTRS, document
from .entry import Entry
from .extract import DEFAULT_GENRE_ACTIVITE
from .identifiers import parse_other_ids
from .layout import Layout
from .models import Activity, Exercice, OtherId, Practitioner, ProfessionalDocument, SavoirFaire

#: practitioners rebuilt per round trip
REBUILD_BATCH = 1_000

_D = ProfessionalDocument.__table__
_GENRE = ACTIVITY_ATTRS.index("genre_activite")


def decode(text: str) -> dict:
    """The claims of a stored document."""
    return json.loads(text)


def builder(layout: Layout) -> Callable[[Entry], str]:
    """A function giving the stored claims (JSON text) of an entry read with ``layout``."""
    person = [layout.person_attrs.index(name)
              for name in ("civilite", "family_name", "given_names")]
    exercice = _reorder(layout.exercice_attrs, EXERCICE_ATTRS)
    savoir_faire = _reorder(layout.savoir_faire_attrs, SAVOIR_FAIRE_ATTRS)
    activity = _reorder(layout.activity_attrs, ACTIVITY_ATTRS)

    def stored(entry: Entry) -> str:
        exercices = [(exercice(e.fields), [savoir_faire(sf) for sf in e.savoir_faire],
                      [_with_genre(activity(a)) for a in e.activities])
                     for e in entry.exercices.values()]
        other_ids = [(o.identifier, o.origin, o.quality)
                     for o in parse_other_ids(entry.other_ids)] if entry.other_ids else []
        return document(entry.id_nat, *(entry.person[i] for i in person), other_ids,
                        exercices, plain=entry.plain)

    return stored


def _reorder(attrs: tuple[str, ...], order: tuple[str, ...]
             ) -> Callable[[tuple[str, ...]], tuple[str, ...]]:
    """Values in ``attrs`` order to values in ``order``, "" for the attributes a file
    lacks."""
    if attrs == order:
        return lambda values: values
    pick = itemgetter(*(attrs.index(name) if name in attrs else len(attrs) for name in order))
    return lambda values: pick((*values, ""))


def _with_genre(values: tuple[str, ...]) -> tuple[str, ...]:
    if values[_GENRE]:
        return values
    return (*values[:_GENRE], DEFAULT_GENRE_ACTIVITE, *values[_GENRE + 1:])


def forget(connection: Connection, ids: list[str]) -> None:
    """Delete the documents of ``ids`` (deactivated or linked practitioners)."""
    connection.execute(delete(_D).where(_D.c.id_nat.in_(ids)))


def rebuild(connection: Connection, batch_size: int = REBUILD_BATCH) -> int:
    """Build the document of every active practitioner again from the directory tables,
    in batches (bounded memory); returns how many. Runs in the caller's transaction."""
    from .writer import insert_rows

    connection.execute(delete(_D))
    total = 0
    for documents in _rebuilt(connection, batch_size):
        insert_rows(connection, _D, ("id_nat", "claims"), documents)
        total += len(documents)
    return total


def _rebuilt(connection: Connection, batch_size: int) -> Iterator[list[tuple]]:
    p = Practitioner.__table__
    after = ""
    while people := connection.execute(
            select(p.c.id_nat, p.c.civilite, p.c.family_name, p.c.given_names)
            .where(p.c.active == true(), p.c.id_nat > after)
            .order_by(p.c.id_nat).limit(batch_size)).all():
        ids = [row.id_nat for row in people]
        parts = _parts(connection, ids)
        yield [(row.id_nat, document(*row, parts["other_ids"].get(row.id_nat, []),
                                     _exercices(row.id_nat, parts)))
               for row in people]
        after = ids[-1]


def _parts(connection: Connection, ids: list[str]) -> dict[str, dict]:
    """The rows of ``ids`` in each child table, in rank order, by idNat (exercices, with
    their rank first) or by (idNat, exercice rank) (savoir-faire, activities)."""
    e, s, a, o = (model.__table__ for model in (Exercice, SavoirFaire, Activity, OtherId))
    queries = {
        "exercices": (select(e.c.id_nat, e.c.rank, *(e.c[n] for n in EXERCICE_ATTRS))
                      .where(e.c.id_nat.in_(ids)).order_by(e.c.id_nat, e.c.rank), 1),
        "savoir_faire": (select(s.c.id_nat, s.c.exercice_rank,
                                *(s.c[n] for n in SAVOIR_FAIRE_ATTRS))
                         .where(s.c.id_nat.in_(ids))
                         .order_by(s.c.id_nat, s.c.exercice_rank, s.c.rank), 2),
        "activities": (select(a.c.id_nat, a.c.exercice_rank, *(a.c[n] for n in ACTIVITY_ATTRS))
                       .where(a.c.id_nat.in_(ids))
                       .order_by(a.c.id_nat, a.c.exercice_rank, a.c.rank), 2),
        "other_ids": (select(o.c.id_nat, o.c.identifier, o.c.origin, o.c.quality)
                      .where(o.c.id_nat.in_(ids)).order_by(o.c.id_nat, o.c.rank), 1),
    }
    found: dict[str, dict] = {}
    for name, (query, key_width) in queries.items():
        grouped = found[name] = {}
        for row in connection.execute(query):
            key = row[0] if key_width == 1 else tuple(row[:2])
            grouped.setdefault(key, []).append(tuple(row[key_width:]))
    return found


def _exercices(id_nat: str, parts: dict[str, dict]) -> list:
    return [(tuple(values), parts["savoir_faire"].get((id_nat, rank), []),
             parts["activities"].get((id_nat, rank), []))
            for rank, *values in parts["exercices"].get(id_nat, [])]
