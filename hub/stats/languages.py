"""German names of the languages counselling offices list for a site (ISO 639-1 codes).

The directory stores a site's languages as codes (`ar`, `tr`); a coordinator
reads names ("Arabisch, Türkisch"). The table holds the languages migration
counselling offices commonly offer: those of the main countries of origin and
of the EU. A code not in it is shown as the code itself, so an unusual
language is still visible rather than dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

NAMES: Mapping[str, str] = {
    "af": "Afrikaans",
    "am": "Amharisch",
    "ar": "Arabisch",
    "az": "Aserbaidschanisch",
    "be": "Belarussisch",
    "bg": "Bulgarisch",
    "bn": "Bengalisch",
    "bs": "Bosnisch",
    "ckb": "Sorani",  # ISO 639-3: Central Kurdish has no ISO 639-1 code of its own
    "cs": "Tschechisch",
    "da": "Dänisch",
    "de": "Deutsch",
    "el": "Griechisch",
    "en": "Englisch",
    "es": "Spanisch",
    "et": "Estnisch",
    "fa": "Persisch (Farsi)",
    "fi": "Finnisch",
    "fr": "Französisch",
    "ha": "Hausa",
    "he": "Hebräisch",
    "hi": "Hindi",
    "hr": "Kroatisch",
    "hu": "Ungarisch",
    "hy": "Armenisch",
    "id": "Indonesisch",
    "ig": "Igbo",
    "it": "Italienisch",
    "ja": "Japanisch",
    "ka": "Georgisch",
    "kk": "Kasachisch",
    "kmr": "Kurmandschi",  # ISO 639-3, like ckb
    "ko": "Koreanisch",
    "ku": "Kurdisch",
    "ky": "Kirgisisch",
    "ln": "Lingala",
    "lt": "Litauisch",
    "lv": "Lettisch",
    "mk": "Mazedonisch",
    "mn": "Mongolisch",
    "nl": "Niederländisch",
    "no": "Norwegisch",
    "om": "Oromo",
    "pa": "Panjabi",
    "pl": "Polnisch",
    "prs": "Dari",  # ISO 639-3: the Persian of Afghanistan
    "ps": "Paschtu",
    "pt": "Portugiesisch",
    "ro": "Rumänisch",
    "ru": "Russisch",
    "rw": "Kinyarwanda",
    "sk": "Slowakisch",
    "sl": "Slowenisch",
    "so": "Somali",
    "sq": "Albanisch",
    "sr": "Serbisch",
    "sv": "Schwedisch",
    "sw": "Swahili",
    "ta": "Tamil",
    "tg": "Tadschikisch",
    "th": "Thailändisch",
    "ti": "Tigrinya",
    "tk": "Turkmenisch",
    "tl": "Tagalog",
    "tr": "Türkisch",
    "uk": "Ukrainisch",
    "ur": "Urdu",
    "uz": "Usbekisch",
    "vi": "Vietnamesisch",
    "wo": "Wolof",
    "yo": "Yoruba",
    "zh": "Chinesisch",
}


def name(code: str) -> str:
    """The German name of language `code` (any case); the code itself if unknown."""
    return NAMES.get(code.strip().lower(), code)


def names(codes: Iterable[str]) -> str:
    """The German names of `codes`, in the site's order, joined by commas."""
    return ", ".join(name(c) for c in codes)
