"""Everything a person reads exists in German: every message of the catalogue is translated."""

from pathlib import Path

from babel.messages.pofile import read_po

import turnus

CATALOGUE = Path(turnus.__file__).parent / "locale" / "de" / "LC_MESSAGES" / "django.po"


def test_every_message_has_a_german_translation_and_none_is_fuzzy():
    with CATALOGUE.open("rb") as handle:
        catalogue = read_po(handle, locale="de")
    untranslated = [
        m.id for m in catalogue if m.id and not (m.string if isinstance(m.string, str) else all(m.string))
    ]
    fuzzy = [m.id for m in catalogue if m.id and m.fuzzy]
    assert untranslated == []
    assert fuzzy == []
    assert len(catalogue) > 100
