"""ISO 3166-1 country codes: alpha-2 <-> alpha-3 <-> numeric, without a runtime dependency.

riskwatch keeps countries as ISO3 (CONTRACTS "Areas and pcodes"), but real files carry other forms:
COD-AB ``ADM0_PCODE`` holds ISO2 (``HT``), COD pcodes start with ISO2 (``TD07``) while HDX HAPI
prefixes ISO3 (``TCD07``), and ACLED's ``iso`` column is the numeric code. The table below was
generated from ``pycountry`` (ISO 3166-1, 249 entries) and is embedded so that reading a file never
needs an extra package. Kosovo (``XK``/``XKX``), a user-assigned code that the UN, HDX and ACLED
use, is added by hand. Codes that are not ISO (such as a synthetic demo country) are not guessed:
callers take an explicit override instead.
"""

from __future__ import annotations

# Each entry: ISO2 (2 letters) + ISO3 (3 letters) + numeric (3 digits), space separated.
_TABLE = (
    "ADAND020 AEARE784 AFAFG004 AGATG028 AIAIA660 ALALB008 AMARM051 AOAGO024 AQATA010 "
    "ARARG032 ASASM016 ATAUT040 AUAUS036 AWABW533 AXALA248 AZAZE031 BABIH070 BBBRB052 "
    "BDBGD050 BEBEL056 BFBFA854 BGBGR100 BHBHR048 BIBDI108 BJBEN204 BLBLM652 BMBMU060 "
    "BNBRN096 BOBOL068 BQBES535 BRBRA076 BSBHS044 BTBTN064 BVBVT074 BWBWA072 BYBLR112 "
    "BZBLZ084 CACAN124 CCCCK166 CDCOD180 CFCAF140 CGCOG178 CHCHE756 CICIV384 CKCOK184 "
    "CLCHL152 CMCMR120 CNCHN156 COCOL170 CRCRI188 CUCUB192 CVCPV132 CWCUW531 CXCXR162 "
    "CYCYP196 CZCZE203 DEDEU276 DJDJI262 DKDNK208 DMDMA212 DODOM214 DZDZA012 ECECU218 "
    "EEEST233 EGEGY818 EHESH732 ERERI232 ESESP724 ETETH231 FIFIN246 FJFJI242 FKFLK238 "
    "FMFSM583 FOFRO234 FRFRA250 GAGAB266 GBGBR826 GDGRD308 GEGEO268 GFGUF254 GGGGY831 "
    "GHGHA288 GIGIB292 GLGRL304 GMGMB270 GNGIN324 GPGLP312 GQGNQ226 GRGRC300 GSSGS239 "
    "GTGTM320 GUGUM316 GWGNB624 GYGUY328 HKHKG344 HMHMD334 HNHND340 HRHRV191 HTHTI332 "
    "HUHUN348 IDIDN360 IEIRL372 ILISR376 IMIMN833 ININD356 IOIOT086 IQIRQ368 IRIRN364 "
    "ISISL352 ITITA380 JEJEY832 JMJAM388 JOJOR400 JPJPN392 KEKEN404 KGKGZ417 KHKHM116 "
    "KIKIR296 KMCOM174 KNKNA659 KPPRK408 KRKOR410 KWKWT414 KYCYM136 KZKAZ398 LALAO418 "
    "LBLBN422 LCLCA662 LILIE438 LKLKA144 LRLBR430 LSLSO426 LTLTU440 LULUX442 LVLVA428 "
    "LYLBY434 MAMAR504 MCMCO492 MDMDA498 MEMNE499 MFMAF663 MGMDG450 MHMHL584 MKMKD807 "
    "MLMLI466 MMMMR104 MNMNG496 MOMAC446 MPMNP580 MQMTQ474 MRMRT478 MSMSR500 MTMLT470 "
    "MUMUS480 MVMDV462 MWMWI454 MXMEX484 MYMYS458 MZMOZ508 NANAM516 NCNCL540 NENER562 "
    "NFNFK574 NGNGA566 NINIC558 NLNLD528 NONOR578 NPNPL524 NRNRU520 NUNIU570 NZNZL554 "
    "OMOMN512 PAPAN591 PEPER604 PFPYF258 PGPNG598 PHPHL608 PKPAK586 PLPOL616 PMSPM666 "
    "PNPCN612 PRPRI630 PSPSE275 PTPRT620 PWPLW585 PYPRY600 QAQAT634 REREU638 ROROU642 "
    "RSSRB688 RURUS643 RWRWA646 SASAU682 SBSLB090 SCSYC690 SDSDN729 SESWE752 SGSGP702 "
    "SHSHN654 SISVN705 SJSJM744 SKSVK703 SLSLE694 SMSMR674 SNSEN686 SOSOM706 SRSUR740 "
    "SSSSD728 STSTP678 SVSLV222 SXSXM534 SYSYR760 SZSWZ748 TCTCA796 TDTCD148 TFATF260 "
    "TGTGO768 THTHA764 TJTJK762 TKTKL772 TLTLS626 TMTKM795 TNTUN788 TOTON776 TRTUR792 "
    "TTTTO780 TVTUV798 TWTWN158 TZTZA834 UAUKR804 UGUGA800 UMUMI581 USUSA840 UYURY858 "
    "UZUZB860 VAVAT336 VCVCT670 VEVEN862 VGVGB092 VIVIR850 VNVNM704 VUVUT548 WFWLF876 "
    "WSWSM882 YEYEM887 YTMYT175 ZAZAF710 ZMZMB894 ZWZWE716 "
    "XKXKX412"
)

_ISO2_TO_ISO3: dict[str, str] = {}
_ISO3_TO_ISO2: dict[str, str] = {}
_NUMERIC_TO_ISO3: dict[str, str] = {}
for _entry in _TABLE.split():
    _iso2, _iso3, _numeric = _entry[:2], _entry[2:5], _entry[5:]
    _ISO2_TO_ISO3[_iso2] = _iso3
    _ISO3_TO_ISO2[_iso3] = _iso2
    _NUMERIC_TO_ISO3[_numeric] = _iso3


def iso2_to_iso3(code: str | None) -> str | None:
    """The ISO3 code for an ISO2 code (any case), or None when it is not an ISO2 code."""
    if not code:
        return None
    return _ISO2_TO_ISO3.get(code.strip().upper())


def iso3_to_iso2(code: str | None) -> str | None:
    """The ISO2 code for an ISO3 code (any case), or None when it is not an ISO3 code."""
    if not code:
        return None
    return _ISO3_TO_ISO2.get(code.strip().upper())


def numeric_to_iso3(code: str | int | None) -> str | None:
    """The ISO3 code for an ISO numeric code (``4``, ``"004"``, ``"4.0"``), or None."""
    if code is None:
        return None
    text = str(code).strip()
    if text.endswith(".0"):
        text = text[:-2]
    if not text.isdigit():
        return None
    return _NUMERIC_TO_ISO3.get(text.zfill(3))


def is_iso3(code: str | None) -> bool:
    """True when ``code`` (any case) is an ISO 3166-1 alpha-3 code."""
    return bool(code) and code.strip().upper() in _ISO3_TO_ISO2


def to_iso3(code: str | None) -> str | None:
    """Normalise an ISO2 or ISO3 code to ISO3; None when it is neither."""
    if not code:
        return None
    text = code.strip().upper()
    if len(text) == 3 and text in _ISO3_TO_ISO2:
        return text
    if len(text) == 2:
        return _ISO2_TO_ISO3.get(text)
    return None
