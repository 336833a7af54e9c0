"""The 202 FLORES-200 language codes NLLB knows, and help for the wrong ones.

An unknown code never raises inside transformers: the tokenizer silently maps
it to ``<unk>`` and the model translates into nothing in particular. So every
code is checked here, before any weights are loaded.
"""

from __future__ import annotations

import difflib

from pipeline.errors import InvalidInput

# The order of transformers' FAIRSEQ_LANGUAGE_CODES (the tokenizer's order).
FLORES_CODES: tuple[str, ...] = (
    'ace_Arab', 'ace_Latn', 'acm_Arab', 'acq_Arab', 'aeb_Arab', 'afr_Latn',
    'ajp_Arab', 'aka_Latn', 'amh_Ethi', 'apc_Arab', 'arb_Arab', 'ars_Arab',
    'ary_Arab', 'arz_Arab', 'asm_Beng', 'ast_Latn', 'awa_Deva', 'ayr_Latn',
    'azb_Arab', 'azj_Latn', 'bak_Cyrl', 'bam_Latn', 'ban_Latn', 'bel_Cyrl',
    'bem_Latn', 'ben_Beng', 'bho_Deva', 'bjn_Arab', 'bjn_Latn', 'bod_Tibt',
    'bos_Latn', 'bug_Latn', 'bul_Cyrl', 'cat_Latn', 'ceb_Latn', 'ces_Latn',
    'cjk_Latn', 'ckb_Arab', 'crh_Latn', 'cym_Latn', 'dan_Latn', 'deu_Latn',
    'dik_Latn', 'dyu_Latn', 'dzo_Tibt', 'ell_Grek', 'eng_Latn', 'epo_Latn',
    'est_Latn', 'eus_Latn', 'ewe_Latn', 'fao_Latn', 'pes_Arab', 'fij_Latn',
    'fin_Latn', 'fon_Latn', 'fra_Latn', 'fur_Latn', 'fuv_Latn', 'gla_Latn',
    'gle_Latn', 'glg_Latn', 'grn_Latn', 'guj_Gujr', 'hat_Latn', 'hau_Latn',
    'heb_Hebr', 'hin_Deva', 'hne_Deva', 'hrv_Latn', 'hun_Latn', 'hye_Armn',
    'ibo_Latn', 'ilo_Latn', 'ind_Latn', 'isl_Latn', 'ita_Latn', 'jav_Latn',
    'jpn_Jpan', 'kab_Latn', 'kac_Latn', 'kam_Latn', 'kan_Knda', 'kas_Arab',
    'kas_Deva', 'kat_Geor', 'knc_Arab', 'knc_Latn', 'kaz_Cyrl', 'kbp_Latn',
    'kea_Latn', 'khm_Khmr', 'kik_Latn', 'kin_Latn', 'kir_Cyrl', 'kmb_Latn',
    'kon_Latn', 'kor_Hang', 'kmr_Latn', 'lao_Laoo', 'lvs_Latn', 'lij_Latn',
    'lim_Latn', 'lin_Latn', 'lit_Latn', 'lmo_Latn', 'ltg_Latn', 'ltz_Latn',
    'lua_Latn', 'lug_Latn', 'luo_Latn', 'lus_Latn', 'mag_Deva', 'mai_Deva',
    'mal_Mlym', 'mar_Deva', 'min_Latn', 'mkd_Cyrl', 'plt_Latn', 'mlt_Latn',
    'mni_Beng', 'khk_Cyrl', 'mos_Latn', 'mri_Latn', 'zsm_Latn', 'mya_Mymr',
    'nld_Latn', 'nno_Latn', 'nob_Latn', 'npi_Deva', 'nso_Latn', 'nus_Latn',
    'nya_Latn', 'oci_Latn', 'gaz_Latn', 'ory_Orya', 'pag_Latn', 'pan_Guru',
    'pap_Latn', 'pol_Latn', 'por_Latn', 'prs_Arab', 'pbt_Arab', 'quy_Latn',
    'ron_Latn', 'run_Latn', 'rus_Cyrl', 'sag_Latn', 'san_Deva', 'sat_Beng',
    'scn_Latn', 'shn_Mymr', 'sin_Sinh', 'slk_Latn', 'slv_Latn', 'smo_Latn',
    'sna_Latn', 'snd_Arab', 'som_Latn', 'sot_Latn', 'spa_Latn', 'als_Latn',
    'srd_Latn', 'srp_Cyrl', 'ssw_Latn', 'sun_Latn', 'swe_Latn', 'swh_Latn',
    'szl_Latn', 'tam_Taml', 'tat_Cyrl', 'tel_Telu', 'tgk_Cyrl', 'tgl_Latn',
    'tha_Thai', 'tir_Ethi', 'taq_Latn', 'taq_Tfng', 'tpi_Latn', 'tsn_Latn',
    'tso_Latn', 'tuk_Latn', 'tum_Latn', 'tur_Latn', 'twi_Latn', 'tzm_Tfng',
    'uig_Arab', 'ukr_Cyrl', 'umb_Latn', 'urd_Arab', 'uzn_Latn', 'vec_Latn',
    'vie_Latn', 'war_Latn', 'wol_Latn', 'xho_Latn', 'ydd_Hebr', 'yor_Latn',
    'yue_Hant', 'zho_Hans', 'zho_Hant', 'zul_Latn',
)

# ISO 639-1 two-letter codes to the FLORES-200 code users most likely mean.
# Also tells the sentence segmenter which rules to use.
ISO639_1: dict[str, str] = {
    "af": "afr_Latn", "am": "amh_Ethi", "ar": "arb_Arab", "as": "asm_Beng",
    "az": "azj_Latn", "be": "bel_Cyrl", "bg": "bul_Cyrl", "bn": "ben_Beng",
    "bo": "bod_Tibt", "bs": "bos_Latn", "ca": "cat_Latn", "cs": "ces_Latn",
    "cy": "cym_Latn", "da": "dan_Latn", "de": "deu_Latn", "el": "ell_Grek",
    "en": "eng_Latn", "eo": "epo_Latn", "es": "spa_Latn", "et": "est_Latn",
    "eu": "eus_Latn", "fa": "pes_Arab", "fi": "fin_Latn", "fr": "fra_Latn",
    "ga": "gle_Latn", "gl": "glg_Latn", "gu": "guj_Gujr", "he": "heb_Hebr",
    "hi": "hin_Deva", "hr": "hrv_Latn", "hu": "hun_Latn", "hy": "hye_Armn",
    "id": "ind_Latn", "is": "isl_Latn", "it": "ita_Latn", "ja": "jpn_Jpan",
    "jv": "jav_Latn", "ka": "kat_Geor", "kk": "kaz_Cyrl", "km": "khm_Khmr",
    "kn": "kan_Knda", "ko": "kor_Hang", "ky": "kir_Cyrl", "lo": "lao_Laoo",
    "lt": "lit_Latn", "lv": "lvs_Latn", "mk": "mkd_Cyrl", "ml": "mal_Mlym",
    "mn": "khk_Cyrl", "mr": "mar_Deva", "ms": "zsm_Latn", "mt": "mlt_Latn",
    "my": "mya_Mymr", "ne": "npi_Deva", "nl": "nld_Latn", "no": "nob_Latn",
    "pa": "pan_Guru", "pl": "pol_Latn", "ps": "pbt_Arab", "pt": "por_Latn",
    "ro": "ron_Latn", "ru": "rus_Cyrl", "si": "sin_Sinh", "sk": "slk_Latn",
    "sl": "slv_Latn", "so": "som_Latn", "sq": "als_Latn", "sr": "srp_Cyrl",
    "sv": "swe_Latn", "sw": "swh_Latn", "ta": "tam_Taml", "te": "tel_Telu",
    "tg": "tgk_Cyrl", "th": "tha_Thai", "tl": "tgl_Latn", "tr": "tur_Latn",
    "uk": "ukr_Cyrl", "ur": "urd_Arab", "uz": "uzn_Latn", "vi": "vie_Latn",
    "yo": "yor_Latn", "zh": "zho_Hans", "zu": "zul_Latn",
}

_TO_ISO639_1 = {code: iso for iso, code in ISO639_1.items()}
_TWO_LETTER = {code.split("_")[0]: iso for iso, code in ISO639_1.items()}
_TWO_LETTER.update(kas="ks", zho="zh")
_BY_LOWER = {code.lower(): code for code in FLORES_CODES}
_BY_LANGUAGE: dict[str, str] = {}
for _code in FLORES_CODES:
    _BY_LANGUAGE.setdefault(_code.split("_")[0], _code)

# Scripts written without spaces between words or sentences.
NO_SPACE_SCRIPTS = frozenset({"Hans", "Hant", "Jpan", "Thai", "Khmr", "Laoo", "Mymr"})


def suggest(code: str) -> str | None:
    """The FLORES-200 code a user probably meant by ``code``, if any."""
    lowered = code.strip().lower().replace("-", "_")
    if lowered in _BY_LOWER:
        return _BY_LOWER[lowered]
    if lowered in ISO639_1:
        return ISO639_1[lowered]
    language, _, region = lowered.partition("_")
    if language == "zh" and region in ("tw", "hk", "mo", "hant"):
        return "zho_Hant"
    if language in ISO639_1:  # en_US, pt-BR
        return ISO639_1[language]
    if lowered.split("_")[0] in _BY_LANGUAGE:
        return _BY_LANGUAGE[lowered.split("_")[0]]
    close = difflib.get_close_matches(code, FLORES_CODES, n=1, cutoff=0.6)
    return close[0] if close else None


def validate_language(code: str) -> str:
    """Return ``code`` if it is one of the 202 codes, else raise InvalidInput
    with a one-line message that names the likely intended code."""
    if code in FLORES_CODES:
        return code
    hint = suggest(code)
    tail = f" (did you mean {hint}?)" if hint else " (see 'nllb-pipeline languages')"
    raise InvalidInput(f"unknown language code {code!r}{tail}")


def iso639_1(code: str) -> str:
    """Two-letter code for the segmenter; the ISO 639-3 part where there is none."""
    return _TO_ISO639_1.get(code, code.split("_")[0])


def bcp47(code: str) -> str:
    """The language tag for HTML's ``lang``: the ISO 639-1 code where there
    is one (else the ISO 639-3 part), with the script where FLORES-200
    writes the language in more than one (``zh-Hant``, ``ks-Deva``)."""
    language = code.split("_")[0]
    tag = _TWO_LETTER.get(language, language)
    if sum(c.split("_")[0] == language for c in FLORES_CODES) > 1:
        tag += "-" + script_of(code)
    return tag


def script_of(code: str) -> str:
    return code.split("_")[-1]


def joins_without_space(code: str) -> bool:
    """True for languages whose sentences follow each other with no space."""
    return script_of(code) in NO_SPACE_SCRIPTS


def _load_names() -> dict[str, str]:
    from importlib import resources

    text = (resources.files("pipeline") / "data" / "language_names.tsv").read_text("utf-8")
    return dict(line.split("\t", 1) for line in text.splitlines() if line.strip())


LANGUAGE_NAMES: dict[str, str] = _load_names()  # code -> English name, as FLORES-200 names them


def language_name(code: str) -> str:
    """The English name of a FLORES-200 code ("French" for fra_Latn)."""
    return LANGUAGE_NAMES.get(code, code)
