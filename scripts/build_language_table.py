"""Write assets/languages.tsv: every language Whisper's tokenizer knows, with the names FLEURS, Common Voice and
espeak-ng give it. Run once when the sources change; the table is committed and tests check it against the
tokenizer and against `espeak-ng --voices`.

Sources: the language tokens of the shipped tokenizer (assets/whisper-tokenizer) and transformers' LANGUAGES names;
google/fleurs' 102 config names; Common Voice 17's locales; espeak-ng 1.51's voice list.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FLEURS = (
    "af_za am_et ar_eg as_in ast_es az_az be_by bg_bg bn_in bs_ba ca_es ceb_ph ckb_iq cmn_hans_cn cs_cz cy_gb da_dk "
    "de_de el_gr en_us es_419 et_ee fa_ir ff_sn fi_fi fil_ph fr_fr ga_ie gl_es gu_in ha_ng he_il hi_in hr_hr hu_hu "
    "hy_am id_id ig_ng is_is it_it ja_jp jv_id ka_ge kam_ke kea_cv kk_kz km_kh kn_in ko_kr ky_kg lb_lu lg_ug ln_cd "
    "lo_la lt_lt luo_ke lv_lv mi_nz mk_mk ml_in mn_mn mr_in ms_my mt_mt my_mm nb_no ne_np nl_nl nso_za ny_mw oc_fr "
    "om_et or_in pa_in pl_pl ps_af pt_br ro_ro ru_ru sd_in sk_sk sl_si sn_zw so_so sr_rs sv_se sw_ke ta_in te_in "
    "tg_tj th_th tr_tr uk_ua umb_ao ur_pk uz_uz vi_vn wo_sn xh_za yo_ng yue_hant_hk zu_za"
).split()
# Whisper codes whose FLEURS config does not start with the code itself
FLEURS_SPECIAL = {"zh": "cmn_hans_cn", "tl": "fil_ph", "jw": "jv_id", "no": "nb_no", "yue": "yue_hant_hk"}
COMMON_VOICE = set(
    (
        "ab af am ar as ast az ba bas be bg bn br ca ckb cnh cs cv cy da de dv dyu el en eo es et eu fa fi fr fy-NL "
        "ga-IE gl gn ha he hi hsb ht hu hy-AM ia id ig is it ja ka kab kk kmr ko ky lg lij lo lt ltg lv mdf mhr mk ml "
        "mn mr mrj mt myv nan-tw nb-NO ne-NP nhi nl nn-NO oc or os pa-IN pl ps pt quy rm-sursilv rm-vallader ro ru rw "
        "sah sat sc sk skr sl sq sr sv-SE sw ta te th ti tig tk tok tr tt tw ug uk ur uz vi vot yi yo yue zgh zh-CN "
        "zh-HK zh-TW zu"
    ).split()
)
COMMON_VOICE_SPECIAL = {"zh": "zh-CN", "no": "nb-NO"}
ESPEAK_SPECIAL = {"zh": "cmn", "en": "en-us", "fr": "fr-fr", "no": "nb", "nn": "nb", "pt": "pt", "es": "es"}


def main() -> None:
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    from core.models.hf_folders import language_token_ids, whisper_tokenizer

    codes = [token.strip("<|>") for token in language_token_ids(whisper_tokenizer())]
    voices = {
        line.split()[1]
        for line in subprocess.run(["espeak-ng", "--voices"], capture_output=True, text=True).stdout.splitlines()[1:]
    }
    rows = ["whisper\tname\tfleurs\tcommon_voice\tespeak"]
    for code in codes:
        fleurs = FLEURS_SPECIAL.get(code) or next((c for c in FLEURS if c.split("_")[0] == code), "")
        cv = COMMON_VOICE_SPECIAL.get(code) or next(
            (c for c in sorted(COMMON_VOICE) if c == code or c.split("-")[0] == code), ""
        )
        espeak = ESPEAK_SPECIAL.get(code) or (code if code in voices else "")
        name = LANGUAGES[code].title()
        rows.append(f"{code}\t{name}\t{fleurs}\t{cv}\t{espeak}")
    (ROOT / "assets" / "languages.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    print(f"{len(rows) - 1} languages → assets/languages.tsv")


if __name__ == "__main__":
    main()
