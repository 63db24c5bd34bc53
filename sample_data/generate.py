"""Deterministic generator for the small, deliberately dirty sample corpora in ``sample_data/``.

Run ``python sample_data/generate.py`` to rewrite every file next to this script, or import it and
call ``generate(out_dir)`` to write the same bytes anywhere else (a test regenerates into a temp dir
and compares bytes with the committed files, so nothing here may depend on time, hash order or the
platform: fixed seeds, lists instead of sets, and every file is written as explicit bytes).

All text comes from the template tables below; no public data set is copied. Each corpus carries
planted dirt (BOM, CRLF, duplicates, garbage, malformed records, ...) at line numbers the script
computes itself and records in the generated README.md, so cleaning stages can be scored against it.
Standard library only (Python 3.11).
"""
from __future__ import annotations

import collections
import csv
import io
import json
import pathlib
import random
from typing import NamedTuple

HERE = pathlib.Path(__file__).resolve().parent
LINE_REF = "`A←B` means line A copies (or varies) line B."


# ------------------------------------------------------------------ shared bilingual vocabulary
# One table feeds the Chinese reviews, the English reviews and the zh–en parallel corpus, so a
# translator trained on the parallel file sees exactly the vocabulary of the review files.

class Aspect(NamedTuple):
    zh: str
    en: str
    be: str                  # English copula ("the facilities are ...")
    pos: tuple[str, ...]     # Chinese adjectives that praise this aspect
    neg: tuple[str, ...]     # ... and that criticise it


class Subject(NamedTuple):
    zh: str                  # with demonstrative: 这家酒店
    bare: str                # bare noun for "酒店房间"-style compounds
    en: str
    domain: str
    aspects: tuple[str, ...]


ADJ_EN = {
    "好": "good", "不错": "nice", "差": "bad", "精致": "exquisite", "扎实": "solid", "粗糙": "rough",
    "漂亮": "beautiful", "好看": "good-looking", "难看": "ugly", "便宜": "cheap", "实惠": "affordable",
    "合理": "reasonable", "贵": "expensive", "高": "high", "低": "low", "精美": "elegant", "结实": "sturdy",
    "简陋": "shabby", "清晰": "clear", "亮": "bright", "模糊": "blurry", "暗": "dim", "长": "long",
    "短": "short", "流畅": "smooth", "稳定": "stable", "卡": "laggy", "慢": "slow", "快": "fast",
    "闷": "muffled", "舒服": "comfortable", "不舒服": "uncomfortable", "轻": "light", "重": "heavy",
    "正宗": "authentic", "咸": "salty", "淡": "bland", "油": "greasy", "好吃": "delicious",
    "新鲜": "fresh", "难吃": "awful", "周到": "attentive", "热情": "friendly", "冷淡": "cold",
    "足": "generous", "大": "big", "少": "small", "安静": "quiet", "优雅": "elegant", "干净": "clean",
    "吵": "noisy", "脏": "dirty", "专业": "professional", "不耐烦": "impatient", "宽敞": "spacious",
    "小": "small", "旧": "old", "软": "soft", "硬": "hard", "丰富": "varied", "单调": "monotonous",
    "方便": "convenient", "偏": "remote", "新": "new", "齐全": "complete", "敷衍": "perfunctory",
}
NO_NEGATE = ("足", "不错")  # "一点也不足" / "一点也不不错" are not idiomatic: never negate these

ASPECTS = {
    "quality": Aspect("质量", "quality", "is", ("好", "不错"), ("差",)),
    "build": Aspect("做工", "workmanship", "is", ("精致", "扎实", "不错"), ("粗糙", "差")),
    "look": Aspect("外观", "design", "is", ("漂亮", "好看"), ("难看",)),
    "price": Aspect("价格", "price", "is", ("便宜", "实惠", "合理"), ("贵",)),
    "value": Aspect("性价比", "value for money", "is", ("高",), ("低",)),
    "packaging": Aspect("包装", "packaging", "is", ("精美", "结实"), ("简陋", "差")),
    "screen": Aspect("屏幕", "screen", "is", ("清晰", "亮"), ("模糊", "暗")),
    "battery": Aspect("续航", "battery life", "is", ("长",), ("短",)),
    "system": Aspect("系统", "system", "is", ("流畅", "稳定"), ("卡", "慢")),
    "camera": Aspect("拍照效果", "camera", "is", ("好", "清晰"), ("差", "模糊")),
    "sound": Aspect("音质", "sound quality", "is", ("好", "清晰"), ("差", "闷")),
    "fit": Aspect("佩戴感", "fit", "is", ("舒服",), ("不舒服",)),
    "weight": Aspect("重量", "weight", "is", ("轻",), ("重",)),
    "taste": Aspect("味道", "taste", "is", ("好", "正宗"), ("差", "咸", "淡")),
    "food": Aspect("菜", "food", "is", ("好吃", "新鲜"), ("难吃", "油", "咸")),
    "service": Aspect("服务", "service", "is", ("好", "周到", "热情"), ("差", "冷淡")),
    "portion": Aspect("分量", "portion", "is", ("足", "大"), ("少",)),
    "ambience": Aspect("环境", "environment", "is", ("好", "安静", "优雅", "干净"), ("吵", "脏", "差")),
    "waiter": Aspect("服务员", "waiter", "is", ("热情", "专业"), ("冷淡", "不耐烦")),
    "serving": Aspect("上菜速度", "serving speed", "is", ("快",), ("慢",)),
    "hygiene": Aspect("卫生", "hygiene", "is", ("好",), ("差",)),
    "room": Aspect("房间", "room", "is", ("干净", "宽敞", "舒服"), ("脏", "小", "旧")),
    "bed": Aspect("床", "bed", "is", ("舒服", "软"), ("硬", "不舒服")),
    "desk": Aspect("前台", "front desk", "is", ("热情", "专业"), ("冷淡", "不耐烦")),
    "breakfast": Aspect("早餐", "breakfast", "is", ("丰富", "好吃"), ("单调", "难吃")),
    "location": Aspect("位置", "location", "is", ("好", "方便"), ("偏",)),
    "soundproof": Aspect("隔音", "soundproofing", "is", ("好",), ("差",)),
    "wifi": Aspect("WiFi", "Wi-Fi", "is", ("快", "稳定"), ("慢", "差")),
    "facilities": Aspect("设施", "facilities", "are", ("新", "齐全"), ("旧", "差")),
    "speed": Aspect("速度", "delivery speed", "is", ("快",), ("慢",)),
    "courier": Aspect("快递员", "courier", "is", ("热情", "专业"), ("不耐烦", "冷淡")),
    "attitude": Aspect("态度", "attitude", "is", ("好",), ("差",)),
    "support": Aspect("客服", "customer service", "is", ("热情", "专业"), ("敷衍", "差")),
    "shipping": Aspect("物流", "shipping", "is", ("快",), ("慢",)),
}

_BASE = ("quality", "build", "look", "price", "value", "packaging")
_PHONE = _BASE + ("screen", "battery", "system", "camera")
_AUDIO = _BASE + ("sound", "battery", "fit")
_TABLET = _BASE + ("screen", "battery", "system", "weight")
_SMALL = _BASE + ("weight",)
_FOOD = ("taste", "food", "service", "portion", "ambience", "waiter", "serving", "hygiene", "price")
_HOTEL = ("room", "bed", "desk", "breakfast", "location", "soundproof", "wifi", "facilities", "service",
          "price", "hygiene")
_SHOP = ("attitude", "support", "packaging", "shipping", "service")

# Latin-script names (iPhone12, AirPods, WiFi ...) are deliberate: the full-width and case
# near-duplicates need embedded ASCII to vary.
SUBJECTS = (
    Subject("这款手机", "手机", "this phone", "product", _PHONE),
    Subject("这部iPhone12", "iPhone12", "this iPhone12", "product", _PHONE),
    Subject("这副耳机", "耳机", "these earphones", "product", _AUDIO),
    Subject("这副AirPods", "AirPods", "these AirPods", "product", _AUDIO),
    Subject("这台笔记本电脑", "笔记本电脑", "this laptop", "product", _TABLET),
    Subject("这台MacBook", "MacBook", "this MacBook", "product", _TABLET),
    Subject("这台平板", "平板", "this tablet", "product", _TABLET),
    Subject("这台iPad", "iPad", "this iPad", "product", _TABLET),
    Subject("这个Kindle", "Kindle", "this Kindle", "product", _TABLET),
    Subject("这台电视", "电视", "this TV", "product", _BASE + ("screen", "sound", "system")),
    Subject("这个蓝牙音箱", "蓝牙音箱", "this Bluetooth speaker", "product", _BASE + ("sound", "battery")),
    Subject("这块智能手表", "智能手表", "this smartwatch", "product", _BASE + ("screen", "battery", "fit")),
    Subject("这个充电宝", "充电宝", "this power bank", "product", _SMALL),
    Subject("这个行李箱", "行李箱", "this suitcase", "product", _SMALL),
    Subject("这个吹风机", "吹风机", "this hair dryer", "product", _SMALL),
    Subject("这家餐厅", "餐厅", "this restaurant", "food", _FOOD),
    Subject("这家火锅店", "火锅店", "this hotpot restaurant", "food", _FOOD),
    Subject("这家面馆", "面馆", "this noodle shop", "food", _FOOD),
    Subject("这家咖啡店", "咖啡店", "this cafe", "food", _FOOD + ("wifi",)),
    Subject("这次点的外卖", "外卖", "this takeaway order", "food", ("taste", "food", "portion", "price", "packaging")),
    Subject("这家酒店", "酒店", "this hotel", "hotel", _HOTEL),
    Subject("这家民宿", "民宿", "this guesthouse", "hotel", _HOTEL),
    Subject("这家宾馆", "宾馆", "this inn", "hotel", _HOTEL),
    Subject("这次的快递", "快递", "this delivery", "delivery", ("speed", "courier", "packaging")),
    Subject("这家快递公司", "快递公司", "this courier company", "delivery", ("speed", "courier", "attitude", "service")),
    Subject("这个卖家", "卖家", "this seller", "delivery", _SHOP),
    Subject("这家网店", "网店", "this online shop", "delivery", _SHOP + ("price",)),
)

DEG_BI = (("很", "very"), ("非常", "extremely"), ("特别", "particularly"), ("挺", "quite"),
          ("十分", "really"), ("比较", "fairly"), ("相当", "rather"))
DEG_ZH = tuple(z for z, _ in DEG_BI) + ("超级", "真的很")
NEUTRAL_BI = (("一般", "average"), ("还可以", "okay"), ("还行", "all right"), ("中规中矩", "so-so"))
NEUTRAL_ZH = tuple(z for z, _ in NEUTRAL_BI) + ("一般般", "马马虎虎", "还凑合", "不好不坏")


def _negatable(asp: str) -> tuple[str, ...]:
    return tuple(a for a in ASPECTS[asp].pos if a not in NO_NEGATE)


def _dumps(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False)


def _nums(nums: list[int]) -> str:
    return ", ".join(str(n) for n in nums) if nums else "—"


def _pairs(pairs: list[tuple[int, int]]) -> str:
    return ", ".join(f"{a}←{b}" for a, b in pairs) if pairs else "—"


class Line:
    """One physical output line. Plain class (identity equality), so list.index() finds *this* line
    even when an equal duplicate exists; no dataclass, so the module also loads via importlib without
    being registered in sys.modules."""

    __slots__ = ("data", "eol", "kind", "src")

    def __init__(self, data: bytes, kind: str = "clean", src: Line | None = None) -> None:
        self.data, self.kind, self.src, self.eol = data, kind, src, b"\n"


def _insert_later(rng: random.Random, lines: list, item, after=None) -> None:
    """Insert item at a random position after `after` (or anywhere but position 0, which holds the BOM)."""
    start = lines.index(after) + 1 if after is not None else 1
    lines.insert(rng.randint(start, len(lines)), item)


# ------------------------------------------------------------------ zh_reviews.jsonl
OPENERS_ZH = {
    "*": ("说实话，", "总的来说，", "整体来说，", "老实讲，", "怎么说呢，"),
    "product": ("用了一周了，", "第一次买这个牌子，", "收到货了，", "用了半个月，", "给家里人买的，", "双十一买的，"),
    "food": ("中午点的，", "和朋友来吃的，", "第二次来了，", "周末排队吃的，", "加班的时候点的，"),
    "hotel": ("出差住了两晚，", "周末带家人入住，", "第一次住这家，", "临时订的，"),
    "delivery": ("昨天下的单，", "这次网购，", "双十一买的，", "第一次在这家买，"),
}
CLOSERS_ZH = {
    "positive": {"*": ("五星好评", "值得推荐", "很满意", "强烈推荐", "给个好评", "物超所值"),
                 "product": ("会回购的", "推荐购买", "买得很值"), "food": ("下次还会再来", "推荐大家来尝尝"),
                 "hotel": ("下次还会再住", "推荐入住"), "delivery": ("下次还找他家", "点赞")},
    "negative": {"*": ("差评", "太失望了", "不推荐", "大家别踩坑", "浪费钱"),
                 "product": ("再也不会买了", "已经申请退货了", "后悔买了"), "food": ("再也不会来了", "不会再点了"),
                 "hotel": ("再也不会住了", "要求退款"), "delivery": ("再也不用这家了", "已经投诉了")},
    "neutral": {"*": ("就这样吧", "凑合吧", "没什么特别的", "再观察一下"),
                "product": ("看后续使用情况", "对得起这个价格"), "food": ("可以试试", "一般水平吧"),
                "hotel": ("住一晚还行", "对得起这个价格"), "delivery": ("没什么好说的",)},
}
ENDINGS_ZH = {"positive": ("。", "。", "！", "！！", "~", ""), "negative": ("。", "。", "！", "！！！", "。。。", "…"),
              "neutral": ("。", "。", "", "～", "...")}
LABELS = ("positive", "negative", "neutral")


def _pick(rng: random.Random, table: dict, domain: str) -> str:
    return rng.choice(table["*"] + table[domain])


def _zh_pos(rng: random.Random, asp: str) -> str:
    adj, r = rng.choice(ASPECTS[asp].pos), rng.random()
    if r < 0.7:
        return rng.choice(DEG_ZH) + adj
    return "太" + adj + "了" if r < 0.9 else adj + "得没话说"


def _zh_neg(rng: random.Random, asp: str) -> str:
    adj, r = rng.choice(ASPECTS[asp].neg), rng.random()
    if r < 0.3:
        return "太" + adj + "了"
    if r < 0.6:
        return rng.choice(DEG_ZH) + adj
    if r < 0.8:
        return "有点" + adj
    if r < 0.9 and _negatable(asp):
        return "一点也不" + rng.choice(_negatable(asp))
    return adj + "得要命"


def _zh_np(rng: random.Random, subj: Subject, asp: str) -> str:
    """The aspect's noun phrase: 这家酒店的房间 / 酒店房间 / 房间 (subject left implicit)."""
    r = rng.random()
    if r < 0.4:
        return subj.zh + "的" + ASPECTS[asp].zh
    return (subj.bare if r < 0.7 else "") + ASPECTS[asp].zh


def _zh_review(rng: random.Random, label: str) -> str:
    """One review sentence whose overall polarity is `label`, built from many small template pieces."""
    while True:
        subj = rng.choice(SUBJECTS)
        a1, a2 = rng.sample(subj.aspects, 2)
        np1, n2, r = _zh_np(rng, subj, a1), ASPECTS[a2].zh, rng.random()
        opener = _pick(rng, OPENERS_ZH, subj.domain) if rng.random() < 0.35 else ""
        end = rng.choice(ENDINGS_ZH[label])
        if label == "positive":
            if r < 0.45:
                body = np1 + _zh_pos(rng, a1)
                if rng.random() < 0.5:
                    body += "，" + rng.choice(("而且", "并且", "另外", "")) + n2 + "也" + _zh_pos(rng, a2)
            elif r < 0.6:
                body = np1 + _zh_pos(rng, a1) + "，就是" + n2 + "有点" + rng.choice(ASPECTS[a2].neg)
            elif r < 0.75:
                body = "虽然" + n2 + "有点" + rng.choice(ASPECTS[a2].neg) + "，但是" + np1 + _zh_pos(rng, a1)
            elif r < 0.88:
                body = "没想到" + np1 + "这么" + rng.choice(ASPECTS[a1].pos)
            else:
                body = _pick(rng, CLOSERS_ZH["positive"], subj.domain) + "！" + np1 + _zh_pos(rng, a1)
        elif label == "negative":
            if r < 0.45:
                body = np1 + _zh_neg(rng, a1)
                if rng.random() < 0.5:
                    body += "，" + rng.choice(("而且", "还有", "再加上", "")) + n2 + "也" + _zh_neg(rng, a2)
            elif r < 0.6:
                body = n2 + rng.choice(("还行", "还可以", "勉强可以")) + "，但是" + np1 + _zh_neg(rng, a1)
            elif r < 0.72 and _negatable(a1):
                adj = rng.choice(_negatable(a1))
                body = "本来以为" + np1 + "会很" + adj + "，结果一点也不" + adj
            elif r < 0.86:
                body = _pick(rng, CLOSERS_ZH["negative"], subj.domain) + "，" + np1 + _zh_neg(rng, a1)
            else:
                body = np1 + _zh_neg(rng, a1) + "，说好的" + n2 + rng.choice(ASPECTS[a2].pos) + "呢"
                end = rng.choice(("？", "？？", "?"))
        else:
            if r < 0.4:
                body = np1 + rng.choice(NEUTRAL_ZH)
                if rng.random() < 0.5:
                    body += "，" + n2 + rng.choice(NEUTRAL_ZH)
            elif r < 0.6:
                body = (np1 + "还算" + rng.choice(ASPECTS[a1].pos) + "，" + n2 + "有点"
                        + rng.choice(ASPECTS[a2].neg))
            elif r < 0.8:
                lead = rng.choice(("和描述的差不多", "跟图片上一样", "没有什么惊喜", "也没什么大问题"))
                body = lead + "，" + np1 + rng.choice(NEUTRAL_ZH)
            elif r < 0.9 and subj.domain == "product":
                body = "东西收到了，还没开始用，" + np1 + "看起来" + rng.choice(NEUTRAL_ZH)
            else:
                body = np1 + rng.choice(NEUTRAL_ZH) + "，" + n2 + "也" + rng.choice(NEUTRAL_ZH)
        if rng.random() < 0.3 and not body.endswith("呢"):  # nothing follows a rhetorical question
            body += "，" + _pick(rng, CLOSERS_ZH[label], subj.domain)
        text = opener + body + end
        if end in ("。", "！") and rng.random() < 0.2:  # some reviews run on to a second sentence
            a3 = rng.choice([a for a in subj.aspects if a not in (a1, a2)])
            pred = {"positive": _zh_pos, "negative": _zh_neg}.get(label, lambda _r, _a: _r.choice(NEUTRAL_ZH))
            text += rng.choice(("", "另外", "还有", "顺便说一句，")) + ASPECTS[a3].zh + pred(rng, a3) + "。"
        if 10 <= len(text) <= 60:
            return text


# Garbage text: what a perplexity filter must catch. One generator per flavour.
HTML_BITS = ('<div class="x">', "&nbsp;", "</div>", "<br/>", "<script>var _hmt = _hmt || [];</script>",
             '<p style="margin:0">', "</p>", "&lt;", "&amp;", "<span>", "</span>", "<!-- ad -->",
             '<img src="data:image/gif;base64,R0lGODlh" />', "document.write('", "');", "<td>", "</td>",
             'window.location.href="/";', "<script>", "</script>", "&quot;", "<li>")
KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm", "1234567890", "asdfjkl;", "hjkl")


def _garbage_cjk(rng: random.Random) -> str:
    return "".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(rng.randint(12, 40)))


def _garbage_ascii(rng: random.Random) -> str:
    return "".join(rng.choice("!@#$%^&*()_+-=[]{}|;:,.<>/?~`\\'") for _ in range(rng.randint(15, 50)))


def _mojibake(text: str) -> str:
    """UTF-8 bytes misread as cp1252 (latin-1 for the five bytes cp1252 leaves undefined)."""
    out = []
    for b in text.encode():
        try:
            out.append(bytes([b]).decode("cp1252"))
        except UnicodeDecodeError:
            out.append(chr(b))
    return "".join(out)


def _garbage_mojibake(rng: random.Random) -> str:
    return _mojibake(_zh_review(rng, rng.choice(LABELS)))


def _garbage_html(rng: random.Random) -> str:
    return "".join(rng.choice(HTML_BITS) for _ in range(rng.randint(4, 9)))


def _garbage_mash(rng: random.Random) -> str:
    out = ""
    while len(out) < rng.randint(12, 36):
        row = rng.choice(KEYBOARD_ROWS)
        i = rng.randrange(len(row) - 2)
        out += row[i:i + rng.randint(2, 5)] * rng.randint(1, 3)
    return out


GARBAGE = {"garbage_cjk": _garbage_cjk, "garbage_ascii": _garbage_ascii, "garbage_mojibake": _garbage_mojibake,
           "garbage_html": _garbage_html, "garbage_keyboard": _garbage_mash}


def _fullwidth(s: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in s)


def _whitespace_variant(rng: random.Random, s: str) -> str:
    r = rng.randrange(5)
    if r == 0:
        return "  " + s
    if r == 1:
        return s + "   "
    if r == 2:
        return " " + s + " "
    if r == 3:  # a doubled inner space (folding restores it); a text without one gets a leading run
        return s.replace(" ", "  ", 1) if " " in s else "  " + s
    return "\u3000" + s


def _case_variant(rng: random.Random, s: str) -> str:
    return s.upper() if rng.random() < 0.5 or s.lower() == s else s.lower()


def _zh_row(text: str, label: str | None, lang: bool, *, drop_label: bool = False) -> bytes:
    row: dict = {"text": text}
    if not drop_label:
        row["label"] = label
    if lang:
        row["lang"] = "zh"
    return _dumps(row).encode()


ZH_DIRT = {  # kind -> README description, in README order
    "near_dup_whitespace": "near-duplicate: extra/leading/trailing (incl. U+3000) whitespace",
    "near_dup_fullwidth": "near-duplicate: ASCII letters/digits made full-width (ｉＰｈｏｎｅ１２)",
    "near_dup_case": "near-duplicate: case of embedded Latin words changed",
    "label_conflict": "label conflict: same text as an earlier line, different label",
    "garbage_cjk": "garbage: random characters from the whole CJK block U+4E00–U+9FFF",
    "garbage_ascii": "garbage: ASCII symbol noise",
    "garbage_mojibake": "garbage: mojibake (UTF-8 review decoded as cp1252)",
    "garbage_html": "garbage: HTML / script debris",
    "garbage_keyboard": "garbage: keyboard mash",
    "malformed_json": "malformed JSON (truncated object; single-quoted pseudo-JSON)",
    "invalid_utf8": "invalid UTF-8 (raw bytes FF FE inside the text)",
    "empty_text": 'empty text: `""`, `"   "`, `"\\u3000\\u3000"`',
    "missing_label": "no `label` key",
    "null_label": '`"label": null`',
    "blank": "blank line",
}


def _zh_plant_copies(rng: random.Random, lines: list[Line], info: dict, seen: dict) -> None:
    """Exact duplicates, near-duplicates and label conflicts, each placed after the row it copies."""
    latin = [ln for ln in lines if any(c.isascii() and c.isalpha() for c in info[id(ln)][0])]
    srcs = rng.sample(lines[1:], 150 + 24 + 4)
    used = {id(s) for s in srcs}
    latin_srcs = rng.sample([ln for ln in latin if id(ln) not in used], 36)

    def variant(src: Line, kind: str, text: str) -> None:
        _, label, lang = info[id(src)]
        assert text not in seen, text  # a variant must not collide with some other clean row
        _insert_later(rng, lines, Line(_zh_row(text, label, lang), kind, src), after=src)

    for src in srcs[:150]:
        _insert_later(rng, lines, Line(src.data, "duplicate", src), after=src)
    for src in srcs[150:174]:
        variant(src, "near_dup_whitespace", _whitespace_variant(rng, info[id(src)][0]))
    for src in latin_srcs[:18]:
        variant(src, "near_dup_fullwidth", _fullwidth(info[id(src)][0]))
    for src in latin_srcs[18:]:
        variant(src, "near_dup_case", _case_variant(rng, info[id(src)][0]))
    for src in srcs[174:]:
        text, label, _ = info[id(src)]
        other = rng.choice([lab for lab in LABELS if lab != label])
        _insert_later(rng, lines, Line(_zh_row(text, other, False), "label_conflict", src), after=src)


def _zh_plant_broken(rng: random.Random, lines: list[Line]) -> int:
    """Garbage rows and structurally broken lines; returns the 0-based start of the CRLF block."""
    for kind, make in GARBAGE.items():
        for _ in range(12):
            _insert_later(rng, lines, Line(_zh_row(make(rng), rng.choice(LABELS), rng.random() < 0.5), kind))
    # Each record below breaks one assumption a naive reader makes.
    t = _zh_review(rng, "positive")
    whole = _dumps({"text": t, "label": "positive"})
    broken = [
        Line(whole[: len(whole) * 3 // 5].encode(), "malformed_json"),  # truncated object
        Line(f"{{'text': '{_zh_review(rng, 'negative')}', 'label': 'negative'}}".encode(), "malformed_json"),
        Line(b'{"text": "' + t[:5].encode() + b"\xff\xfe" + t[5:].encode() + b'", "label": "positive"}',
             "invalid_utf8"),
        Line(_zh_row("", "neutral", True), "empty_text"),
        Line(_zh_row("   ", "positive", False), "empty_text"),
        Line(_zh_row("\u3000\u3000", "negative", False), "empty_text"),
    ]
    for i in range(3):
        broken.append(Line(_zh_row(_zh_review(rng, "positive"), None, i == 0, drop_label=True),
                           "missing_label"))
    broken.append(Line(_zh_row(_zh_review(rng, "negative"), None, False), "null_label"))
    for item in broken:
        _insert_later(rng, lines, item)
    n = len(lines)
    lines.insert(rng.randint(n // 3, n // 2), Line(b"", "blank"))
    lines.insert(rng.randint(n // 2 + 1, 2 * n // 3), Line(b"", "blank"))
    # CRLF on 20 consecutive clean lines (as if pasted from a Windows editor).
    start = rng.randint(len(lines) // 4, len(lines) // 2)
    while any(ln.kind != "clean" for ln in lines[start:start + 20]):
        start += 1
    for ln in lines[start:start + 20]:
        ln.eol = b"\r\n"
    return start


def gen_zh_reviews(out: pathlib.Path) -> list[str]:
    rng = random.Random(20240101)
    clean, seen = [], {}
    while len(clean) < 2714:
        label = rng.choices(LABELS, weights=(65, 25, 10))[0]
        text = _zh_review(rng, label)
        if text not in seen:  # unique before dirt, so every later repeat is planted and countable
            seen[text] = label
            clean.append((text, label, rng.random() < 0.6))
    lines = [Line(_zh_row(*row)) for row in clean]
    _zh_plant_copies(rng, lines, {id(ln): row for ln, row in zip(lines, clean)}, seen)
    start = _zh_plant_broken(rng, lines)

    data = b"\xef\xbb\xbf" + b"".join(ln.data + ln.eol for ln in lines)
    (out / "zh_reviews.jsonl").write_bytes(data)
    no = {id(ln): i for i, ln in enumerate(lines, start=1)}
    by_kind = collections.defaultdict(list)
    for ln in lines:
        by_kind[ln.kind].append((no[id(ln)], no[id(ln.src)]) if ln.src else no[id(ln)])
    garbage = sorted(x for k in GARBAGE for x in by_kind[k])
    (out / "zh_reviews.garbage_lines.txt").write_bytes("".join(f"{x}\n" for x in garbage).encode())

    # Statistics come from re-parsing the bytes just written, so the README cannot drift from them.
    labels, parsed = collections.Counter(), 0
    for raw in data[3:].split(b"\n")[:-1]:
        try:
            rec = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
        parsed += 1
        labels["<no key>" if "label" not in rec else "null" if rec["label"] is None else rec["label"]] += 1
    clean_dist = collections.Counter(lab for _, lab, _ in clean)
    rows = [
        ("UTF-8 BOM at the start of the file", 1, "1"),
        ("CRLF line ending (rest of the file is LF)", 20, f"{start + 1}–{start + 20}"),
        ("exact duplicate of an earlier line", len(by_kind["duplicate"]), _pairs(by_kind["duplicate"])),
    ]
    for kind, what in ZH_DIRT.items():
        items = by_kind[kind]
        shown = _pairs(items) if items and isinstance(items[0], tuple) else _nums(items)
        rows.append((what, len(items), shown))
    return [
        "## zh_reviews.jsonl",
        "",
        "Chinese review classification (products, restaurants/takeaway, hotels, delivery). JSON Lines, one",
        'object per physical line: `{"text": str, "label": "positive"|"negative"|"neutral"}`, about 60% of',
        'rows also carry `"lang": "zh"`. UTF-8 with a BOM; LF line ends except one CRLF block.',
        "",
        f"- physical lines: {len(lines)}; parseable JSON records: {parsed}",
        f"- template rows (before dirt): {len(clean)}, all distinct; labels "
        + ", ".join(f"{k} {clean_dist[k]} ({clean_dist[k] / len(clean):.1%})" for k in LABELS),
        "- labels over all parseable records: " + ", ".join(f"{k} {v}" for k, v in sorted(labels.items())),
        (f"- `zh_reviews.garbage_lines.txt`: the {len(garbage)} garbage line numbers (all `garbage:` rows"
         " below), one per line — the recall target for a perplexity filter"),
        "",
        *_table(rows),
    ]


def _table(rows: list[tuple[str, int, str]]) -> list[str]:
    out = ["| dirt | count | line(s) |", "|---|---:|---|"]
    out += [f"| {what} | {count} | {where} |" for what, count, where in rows]
    return out + [""]


# ------------------------------------------------------------------ en_reviews.csv
EN_DEG = ("very", "really", "extremely", "quite", "pretty", "super", "incredibly")
EN_OPENERS = ("Overall", "To be honest", "Honestly", "After a week", "For the price", "All in all")
EN_CLOSERS = {
    "positive": ("Would buy again.", "Highly recommended!", "Five stars.", "Love it!", "Worth every penny.",
                 "Very happy with it.", "Will come back."),
    "negative": ("Never again.", "Do not recommend.", "Total waste of money.", "Very disappointed.",
                 "One star.", "Asked for a refund.", "Avoid."),
}


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _en_review(rng: random.Random, label: str) -> str:
    s = rng.choice(SUBJECTS)
    a1, a2 = (ASPECTS[k] for k in rng.sample(s.aspects, 2))
    p1, p2 = ADJ_EN[rng.choice(a1.pos)], ADJ_EN[rng.choice(a2.pos)]
    n1, n2 = ADJ_EN[rng.choice(a1.neg)], ADJ_EN[rng.choice(a2.neg)]
    deg, opener, r = rng.choice(EN_DEG), rng.choice(EN_OPENERS), rng.random()
    if label == "positive":
        forms = (f"the {a1.en} of {s.en} {a1.be} {deg} {p1}.",
                 f"the {a1.en} {a1.be} {deg} {p1} and the {a2.en} {a2.be} {p2}.",
                 f"{opener}, the {a1.en} {a1.be} {deg} {p1}.",
                 f"love {s.en}! The {a1.en} {a1.be} {deg} {p1}.",
                 f"the {a1.en} {a1.be} {deg} {p1}, but the {a2.en} {a2.be} a bit {n2}.")
        quoted = f'my friend said the {a1.en} {a1.be} "{deg} {p1}", and she was right.'
    else:
        forms = (f"the {a1.en} of {s.en} {a1.be} too {n1}.",
                 f"the {a1.en} {a1.be} not {p1} at all, and the {a2.en} {a2.be} {deg} {n2}.",
                 f"{opener}, the {a1.en} {a1.be} {deg} {n1}.",
                 f"expected more from {s.en}. The {a1.en} {a1.be} {deg} {n1}.",
                 f"the {a1.en} {a1.be} fine, but the {a2.en} {a2.be} too {n2}.")
        quoted = f'the so-called "{p1}" {a1.en} {a1.be} actually {deg} {n1}.'
    text = quoted if r < 0.03 else rng.choice(forms)
    if rng.random() < 0.35:
        text += " " + rng.choice(EN_CLOSERS[label])
    return _cap(text)


class Row:
    """One CSV record; `raw` (if set) is written verbatim after "id," instead of through the csv writer."""

    __slots__ = ("kind", "label", "raw", "src", "text")

    def __init__(self, text: str, label: str, kind: str = "clean", src: Row | None = None,
                 raw: str | None = None) -> None:
        self.text, self.label, self.kind, self.src, self.raw = text, label, kind, src, raw


def _csv_record(fields: list[str]) -> str:
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\r\n").writerow(fields)  # CRLF everywhere, like an Excel export
    return buf.getvalue()


def gen_en_reviews(out: pathlib.Path) -> list[str]:
    rng = random.Random(20240202)
    rows, seen = [], set()
    while len(rows) < 562:
        label = "positive" if rng.random() < 0.7 else "negative"
        text = _en_review(rng, label)
        if text not in seen:
            seen.add(text)
            rows.append(Row(text, label))
    clean = list(rows)
    srcs = rng.sample(clean, 18 + 10)
    for src in srcs[:18]:
        _insert_later(rng, rows, Row(src.text, src.label, "duplicate", src), after=src)
    for i, src in enumerate(srcs[18:]):
        t = (src.text.upper(), src.text.lower(), "  " + src.text, src.text + "  ",
             src.text.replace(" ", "  ", 2))[i % 5]
        _insert_later(rng, rows, Row(t, src.label, "case_or_whitespace_variant", src), after=src)
    for t in ("asdfasdf jkljkl qwerty", "#$%^&*!!!???***", '<div class="review">&nbsp;</div><br/>',
              "Itâ€™s great, Iâ€™d buy it again", "?????? ?????? ????"):
        _insert_later(rng, rows, Row(t, rng.choice(("positive", "negative")), "garbage"))
    specials = [
        Row("Great hotel, friendly staff.\nWould stay again.", "positive", "embedded_newline"),
        Row("", "negative", "empty_text"),
        Row(_en_review(rng, "positive"), "", "missing_label"),
        Row("", "", "too_many_fields", raw="Good value, works well,positive"),
        Row("", "", "too_few_fields", raw="Terrible customer service"),
    ]
    for item in specials:
        _insert_later(rng, rows, item)
    # A stray quote inside an unquoted field, pinned to en-0420 so docs and tests can name it.
    rows.insert(419, Row("", "", "stray_quote", raw='The 12" screen is fine,positive'))

    records = [_csv_record(["id", "text", "label"])]
    line, where, ids = 2, {}, {}
    for i, row in enumerate(rows, start=1):
        rid = f"en-{i:04d}"
        ids[id(row)], where[id(row)] = rid, line
        rec = f"{rid},{row.raw}\r\n" if row.raw is not None else _csv_record([rid, row.text, row.label])
        records.append(rec)
        line += rec.count("\n")
    (out / "en_reviews.csv").write_bytes("".join(records).encode())

    def at(row: Row) -> str:
        return f"{where[id(row)]} ({ids[id(row)]})"

    by_kind = collections.defaultdict(list)
    for row in rows:
        by_kind[row.kind].append(f"{at(row)}←{at(row.src)}" if row.src else at(row))
    comma = [at(r) for r in rows if r.raw is None and "," in r.text and '"' not in r.text and "\n" not in r.text]
    dq = [at(r) for r in rows if r.raw is None and '"' in r.text]
    dist = collections.Counter(r.label for r in clean)
    table = [("CRLF line endings on every line (whole file)", line - 1, f"1–{line - 1}"),
             ("quoted field containing commas (no quotes inside)", len(comma), ", ".join(comma)),
             ('quoted field with doubled quotes `""` inside', len(dq), ", ".join(dq))]
    desc = {"embedded_newline": "quoted text with an embedded LF (record spans 2 physical lines)",
            "stray_quote": 'unbalanced `"` in the middle of an unquoted field',
            "too_many_fields": "too many fields (unquoted comma in the text)",
            "too_few_fields": "too few fields (no label column)",
            "duplicate": "exact duplicate (text, label) of an earlier row, new id",
            "case_or_whitespace_variant": "case or whitespace variant of an earlier row",
            "garbage": "garbage text (keyboard mash, symbols, HTML, mojibake, ???)",
            "empty_text": "empty text field", "missing_label": "empty label field"}
    for kind, what in desc.items():
        table.append((what, len(by_kind[kind]), ", ".join(by_kind[kind])))
    return [
        "## en_reviews.csv",
        "",
        "English review classification. CSV with header `id,text,label`, RFC 4180 quoting (fields with",
        "commas, quotes or newlines are quoted; quotes doubled), CRLF line ends, UTF-8 without BOM.",
        "Ids run `en-0001` … in file order, so every row's id is its record number.",
        "",
        f"- physical lines: {line - 1} (header + {len(rows)} records; one record spans 2 lines)",
        f"- template rows (before dirt): {len(clean)}, all distinct; labels "
        + ", ".join(f"{k} {dist[k]} ({dist[k] / len(clean):.1%})" for k in ("positive", "negative")),
        "- line numbers below are physical lines (header = line 1), with the row id",
        "",
        *_table(table),
    ]


# ------------------------------------------------------------------ zh_en_parallel.tsv
OPENERS_BI = (("总的来说，", "overall, "), ("说实话，", "to be honest, "), ("整体来说，", "on the whole, "),
              ("老实说，", "honestly, "))
CLOSERS_BI = {
    "pos": (("推荐购买。", "Recommended."), ("五星好评！", "Five stars!"), ("我很满意。", "I am very satisfied."),
            ("物超所值。", "It is great value for money.")),
    "neg": (("不推荐。", "Not recommended."), ("太失望了。", "Very disappointing."),
            ("我不会再买了。", "I will not buy it again.")),
    "neu": (("就这样吧。", "That is all."), ("再观察一下。", "I will wait and see.")),
}
LIKE_BI = (("喜欢", "like"), ("很喜欢", "really like"), ("不喜欢", "don't like"), ("非常喜欢", "love"),
           ("推荐", "recommend"), ("不推荐", "don't recommend"))


def _bi_pred(rng: random.Random, asp: str, pol: str, allow_not: bool = True) -> tuple[str, str]:
    """A predicate in both languages: ("很干净", "very clean")."""
    a = ASPECTS[asp]
    dz, de = rng.choice(DEG_BI)
    if pol == "pos":
        adj = rng.choice(a.pos)
        return dz + adj, f"{de} {ADJ_EN[adj]}"
    if pol == "neu":
        return rng.choice(NEUTRAL_BI)
    r, adj = rng.random(), rng.choice(a.neg)
    if r < 0.25 and allow_not and _negatable(asp):
        p = rng.choice(_negatable(asp))
        return "一点也不" + p, f"not {ADJ_EN[p]} at all"
    if r < 0.5:
        return "太" + adj + "了", f"too {ADJ_EN[adj]}"
    if r < 0.7:
        return "有点" + adj, f"a bit {ADJ_EN[adj]}"
    return dz + adj, f"{de} {ADJ_EN[adj]}"


def _parallel_pair(rng: random.Random) -> tuple[str, str]:
    s = rng.choice(SUBJECTS)
    k1, k2 = rng.sample(s.aspects, 2)
    a1, a2 = ASPECTS[k1], ASPECTS[k2]
    pol = rng.choices(("pos", "neg", "neu"), weights=(55, 35, 10))[0]
    z1, e1 = _bi_pred(rng, k1, pol)
    base_zh, base_en = f"{s.zh}的{a1.zh}{z1}", f"the {a1.en} of {s.en} {a1.be} {e1}"
    r = rng.random()
    if r < 0.3:
        return base_zh + "。", _cap(base_en) + "."
    if r < 0.45:
        z1, e1 = _bi_pred(rng, k1, pol, allow_not=False)
        z2, e2 = _bi_pred(rng, k2, pol, allow_not=False)
        return (f"{s.zh}的{a1.zh}{z1}，而且{a2.zh}也{z2}。",
                f"The {a1.en} of {s.en} {a1.be} {e1}, and the {a2.en} {a2.be} also {e2}.")
    if r < 0.6:
        z2, e2 = _bi_pred(rng, k2, "neg" if pol == "pos" else "pos")
        return f"{base_zh}，但是{a2.zh}{z2}。", f"{_cap(base_en)}, but the {a2.en} {a2.be} {e2}."
    if r < 0.72:
        oz, oe = rng.choice(OPENERS_BI)
        return f"{oz}{base_zh}。", _cap(oe + base_en) + "."
    if r < 0.82:
        cz, ce = rng.choice(CLOSERS_BI[pol])
        return f"{base_zh}。{cz}", f"{_cap(base_en)}. {ce}"
    if r < 0.9:
        return f"我觉得{base_zh}。", f"I think {base_en}."
    if r < 0.95 and _negatable(k1):  # the two review idioms: 没想到…这么…！ and 本来以为…结果一点也不…
        adj = rng.choice(_negatable(k1))
        if r < 0.925:
            return (f"没想到{s.zh}的{a1.zh}这么{adj}！",
                    f"I did not expect the {a1.en} of {s.en} to be so {ADJ_EN[adj]}!")
        it = "they are" if a1.be == "are" else "it is"
        return (f"本来以为{s.zh}的{a1.zh}会很{adj}，结果一点也不{adj}。",
                f"I thought the {a1.en} of {s.en} would be very {ADJ_EN[adj]}, but {it} not {ADJ_EN[adj]} at all.")
    if r < 0.97:
        dz, de = rng.choice(DEG_BI)
        adj = rng.choice(a1.pos)
        return f"{s.zh}的{a1.zh}{dz}{adj}吗？", f"{_cap(a1.be)} the {a1.en} of {s.en} {de} {ADJ_EN[adj]}?"
    if r < 0.985:
        return f"{s.zh}的{a1.zh}怎么样？", f"How {a1.be} the {a1.en} of {s.en}?"
    vz, ve = rng.choice(LIKE_BI)
    return f"我{vz}{s.zh}。", f"I {ve} {s.en}."


def gen_parallel(out: pathlib.Path) -> list[str]:
    rng = random.Random(20240303)
    lines, seen = [], set()
    while len(lines) < 7989:
        zh, en = _parallel_pair(rng)
        if zh not in seen:
            seen.add(zh)
            lines.append(Line(f"{zh}\t{en}".encode()))
    clean = list(lines)
    picks = rng.sample(clean, 11)
    for src in picks[:5]:
        _insert_later(rng, lines, Line(src.data, "duplicate", src), after=src)

    def cols(ln: Line) -> tuple[str, str]:
        zh, en = ln.data.decode("utf-8").split("\t")
        return zh, en

    no_tab = [cols(picks[5])[0], "{} {}".format(*cols(picks[6])), "{}    {}".format(*cols(picks[7]))]
    dirt = [Line(t.encode(), "no_tab") for t in no_tab]
    dirt += [Line(f"{cols(p)[0]}\t".encode(), "empty_target") for p in picks[8:10]]
    dirt.append(Line("{}\t{}\tsource=web".format(*cols(picks[10])).encode(), "three_fields"))
    for item in dirt:
        _insert_later(rng, lines, item)
    (out / "zh_en_parallel.tsv").write_bytes(b"".join(ln.data + b"\n" for ln in lines))
    no = {id(ln): i for i, ln in enumerate(lines, start=1)}
    kinds = collections.defaultdict(list)
    for ln in lines:
        kinds[ln.kind].append((no[id(ln)], no[id(ln.src)]) if ln.src else no[id(ln)])
    return [
        "## zh_en_parallel.tsv",
        "",
        "zh–en parallel sentences from aligned bilingual templates (same subject/aspect/adjective tables as",
        "the review files, so review vocabulary is covered). `zh<TAB>en`, no header, UTF-8, LF.",
        "",
        f"- lines: {len(lines)}; distinct clean pairs: {len(clean)}",
        "",
        *_table([("exact duplicate of an earlier line", 5, _pairs(kinds["duplicate"])),
                 ("no tab (zh only; zh+space+en; zh+4 spaces+en)", 3, _nums(kinds["no_tab"])),
                 ("empty target (`zh<TAB>` and nothing after)", 2, _nums(kinds["empty_target"])),
                 ("three fields (`zh<TAB>en<TAB>source=web`)", 1, _nums(kinds["three_fields"]))]),
    ]


# ------------------------------------------------------------------ ner_en.conll
FIRST = ("John", "Mary", "Peter", "Anna", "Michael", "Laura", "David", "Maria", "Thomas", "Elena", "Ahmed",
         "Yuki", "Carlos", "Sofia", "Ivan", "Fatima", "Lars", "Priya", "Kofi", "Olga", "James", "Hans")
LAST = ("Smith", "Mueller", "Rossi", "Tanaka", "Kowalski", "Garcia", "Johansson", "Dubois", "Novak",
        "Okafor", "Petrov", "Wang", "Silva", "Jensen", "Fischer", "Kumar", "Brennan", "Haddad", "Moreau")
EN_ENT = {
    "LOC": ("Germany", "France", "Paris", "London", "New York", "Tokyo", "Beijing", "Brazil", "Moscow", "Cairo",
            "Sydney", "Madrid", "Rome", "Canada", "Mexico City", "Nairobi", "Oslo", "Berlin", "Seoul",
            "Hong Kong", "Buenos Aires", "Lisbon", "Warsaw", "Istanbul", "Chicago", "Bavaria", "Kenya"),
    "ORG": ("Reuters", "United Nations", "Siemens", "Toyota", "European Commission", "World Bank",
            "Deutsche Bank", "Red Cross", "Bundesbank", "Volkswagen", "NATO", "Real Madrid", "Manchester United",
            "Bayern Munich", "Air France", "Nokia", "IMF", "OPEC", "Greenpeace", "General Motors", "FIFA"),
    "MISC": ("World Cup", "Olympic Games", "Nobel Prize", "Tour de France", "Champions League", "Davis Cup",
             "Grand Prix"),
    "MISCJ": ("German", "French", "British", "Chinese", "Japanese", "Brazilian", "Russian", "Italian",
              "Canadian", "Kenyan", "Polish", "Spanish", "European", "Dutch", "Swedish"),
}
# Literal tokens are tok/POS/CHUNK; {X} is an entity that opens its own NP chunk, {+X} one that
# continues the chunk before it ("the {+MISCJ} government"). Chunk tags are IOB1 like the NER tags.
# The (weight) keeps adjacent same-type entities (IOB1 B- tags) present but rare.
EN_TEMPLATES = (
    (3, ("{PER} ,/,/O a/DT/I-NP spokesman/NN/I-NP for/IN/I-PP {ORG} ,/,/O said/VBD/I-VP talks/NNS/I-NP "
         "would/MD/I-VP resume/VB/I-VP in/IN/I-PP {LOC} next/JJ/B-NP week/NN/I-NP ././O")),
    (3, ("{ORG} shares/NNS/I-NP rose/VBD/I-VP 3/CD/I-NP percent/NN/I-NP in/IN/I-PP {LOC} on/IN/I-PP "
         "Tuesday/NNP/I-NP ././O")),
    (3, "{PER} won/VBD/I-VP the/DT/I-NP {+MISC} in/IN/I-PP {LOC} ././O"),
    (3, ("The/DT/I-NP {+MISCJ} government/NN/I-NP said/VBD/I-VP on/IN/I-PP Friday/NNP/I-NP it/PRP/B-NP "
         "would/MD/I-VP send/VB/I-VP aid/NN/I-NP to/TO/I-PP {LOC} ././O")),
    (3, ("{ORG} will/MD/I-VP open/VB/I-VP a/DT/I-NP new/JJ/I-NP factory/NN/I-NP near/IN/I-PP {LOC} ,/,/O "
         "chief/JJ/I-NP executive/NN/I-NP {+PER} told/VBD/I-VP reporters/NNS/I-NP ././O")),
    (3, "{PER} of/IN/I-PP {LOC} beat/VBD/I-VP {PER} 6-3/CD/B-NP 6-4/CD/B-NP ././O"),
    (2, ("Police/NNS/I-NP in/IN/I-PP {LOC} arrested/VBD/I-VP two/CD/I-NP men/NNS/I-NP on/IN/I-PP "
         "Monday/NNP/I-NP ././O")),
    (3, ("{PER} ,/,/O who/WP/I-NP joined/VBD/I-VP {ORG} in/IN/I-PP 1994/CD/I-NP ,/,/O will/MD/I-VP "
         "move/VB/I-VP to/TO/I-PP {LOC} ././O")),
    (3, ("The/DT/I-NP {+MISCJ} team/NN/I-NP arrived/VBD/I-VP in/IN/I-PP {LOC} ahead/RB/I-ADVP of/IN/I-PP "
         "the/DT/I-NP {+MISC} ././O")),
    (2, ("{ORG} and/CC/O {ORG} agreed/VBD/I-VP to/TO/I-VP merge/VB/I-VP their/PRP$/I-NP {+LOC} "
         "operations/NNS/I-NP ././O")),
    (2, ("Prices/NNS/I-NP in/IN/I-PP {LOC} fell/VBD/I-VP for/IN/I-PP the/DT/I-NP third/JJ/I-NP month/NN/I-NP "
         ",/,/O {ORG} said/VBD/I-VP ././O")),
    (3, "{PER} told/VBD/I-VP {ORG} he/PRP/B-NP expected/VBD/I-VP a/DT/I-NP deal/NN/I-NP soon/RB/I-ADVP ././O"),
    (2, ("Fans/NNS/I-NP of/IN/I-PP {ORG} celebrated/VBD/I-VP in/IN/I-PP {LOC} after/IN/I-PP the/DT/I-NP "
         "{+MISC} final/NN/I-NP ././O")),
    (2, "{ORG} striker/NN/I-NP {+PER} scored/VBD/I-VP twice/RB/I-ADVP against/IN/I-PP {ORG} ././O"),
    (1, "The/DT/I-NP market/NN/I-NP closed/VBD/I-VP higher/JJR/I-ADJP on/IN/I-PP {+LOC} trading/NN/I-NP ././O"),
    (1, ("Trains/NNS/I-NP from/IN/I-PP {LOC} {LOC} were/VBD/I-VP cancelled/VBN/I-VP on/IN/I-PP "
         "Sunday/NNP/I-NP ././O")),
    (1, ("The/DT/I-NP {+ORG} {+ORG} merger/NN/I-NP was/VBD/I-VP approved/VBN/I-VP by/IN/I-PP "
         "regulators/NNS/I-NP ././O")),
    (1, "Doubles/NNS/I-NP winners/NNS/I-NP :/:/O {PER} {PER} ././O"),
    (1, "Leaders/NNS/I-NP attended/VBD/I-VP the/DT/I-NP {+MISCJ} {+MISCJ} summit/NN/I-NP in/IN/I-PP {LOC} ././O"),
)


def _en_entity(rng: random.Random, typ: str) -> list[tuple[str, str]]:
    if typ == "PER":
        name = rng.choice(LAST) if rng.random() < 0.25 else f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        return [(w, "NNP") for w in name.split()]
    if typ == "MISCJ":
        return [(rng.choice(EN_ENT["MISCJ"]), "JJ")]
    return [(w, "NNP") for w in rng.choice(EN_ENT[typ]).split()]


def _en_sentence(rng: random.Random) -> list[list[str]]:
    """Rows of [token, POS, chunk, NER] with IOB1 chunk and NER tags."""
    template = rng.choices([t for _, t in EN_TEMPLATES], weights=[w for w, _ in EN_TEMPLATES])[0]
    rows: list[list[str]] = []
    used: list[str] = []
    for item in template.split():
        if not item.startswith("{"):
            tok, pos, chunk = item.split("/")
            rows.append([tok, pos, chunk, "O"])
            continue
        cont, typ = item[1] == "+", item.strip("{+}")
        words = _en_entity(rng, typ)
        while " ".join(w for w, _ in words) in used:  # two slots of one sentence name different things
            words = _en_entity(rng, typ)
        used.append(" ".join(w for w, _ in words))
        ner = "MISC" if typ == "MISCJ" else typ
        prev_ner = rows[-1][3] if rows else "O"
        prev_chunk = rows[-1][2] if rows else "O"
        for j, (w, pos) in enumerate(words):
            # IOB1: B- only where a chunk/entity directly follows another of the same type.
            tag = f"B-{ner}" if j == 0 and prev_ner.endswith("-" + ner) else f"I-{ner}"
            chunk = "B-NP" if j == 0 and not cont and prev_chunk.endswith("-NP") else "I-NP"
            rows.append([w, pos, chunk, tag])
    return rows


def gen_ner_en(out: pathlib.Path) -> list[str]:
    rng = random.Random(20240404)
    sents, seen = [], set()
    while len(sents) < 398:
        s = _en_sentence(rng)
        key = " ".join(r[0] for r in s)
        if key not in seen:
            seen.add(key)
            sents.append({"rows": s, "kind": "clean"})
    dup_srcs = rng.sample(sents[:300], 2)
    for src in dup_srcs:
        _insert_later(rng, sents, {"rows": [list(r) for r in src["rows"]], "kind": "duplicate", "src": src},
                      after=src)
    # Break two other sentences (not the duplicated ones, so each duplicate stays exact).
    bad_col, bad_tag = rng.sample([s for s in sents if s["kind"] == "clean" and s not in dup_srcs
                                   and any(r[3] != "O" for r in s["rows"])], 2)
    bad_col["kind"], bad_col["bad"] = "missing_column", rng.randrange(len(bad_col["rows"]))
    del bad_col["rows"][bad_col["bad"]][2]  # token POS NER: the chunk column is gone
    ent = [i for i, r in enumerate(bad_tag["rows"]) if r[3] != "O"]
    bad_tag["kind"], bad_tag["bad"] = "unknown_tag", rng.choice(ent)
    bad_tag["rows"][bad_tag["bad"]][3] = "I-FOO"

    lines, i, docs = [], 0, 0
    while i < len(sents):
        docs += 1
        lines += ["-DOCSTART- -X- -X- O", ""]
        for s in sents[i:i + rng.randint(8, 20)]:
            s["line"] = len(lines) + 1
            lines += [" ".join(r) for r in s["rows"]] + [""]
            i += 1
    text = "\n".join(lines[:-1])  # no trailing blank line and, deliberately, no final newline
    (out / "ner_en.conll").write_bytes(text.encode())

    ents = collections.Counter()
    b_tags = 0
    for s in sents:
        prev = "O"
        for r in s["rows"]:
            tag = r[-1]
            if tag.startswith("B-") or (tag.startswith("I-") and prev[2:] != tag[2:]):
                ents[tag[2:]] += 1
            b_tags += tag.startswith("B-")
            prev = tag
    dups = [(s["line"], s["src"]["line"]) for s in sents if s["kind"] == "duplicate"]
    return [
        "## ner_en.conll",
        "",
        "English NER, CoNLL-2003 layout: `token POS chunk NER` separated by single spaces, one token per",
        "line, a blank line between sentences, `-DOCSTART- -X- -X- O` + blank line opening each document.",
        "Chunk and NER tags are IOB1: `B-` appears only where an entity directly follows another entity of",
        "the same type (e.g. `from Paris London`, `the German French summit`). Types: PER, ORG, LOC, MISC.",
        "",
        (f"- documents: {docs}; sentences: {len(sents)}; tokens: {sum(len(s['rows']) for s in sents)}; "
         f"lines: {len(lines) - 1}"),
        "- entities: " + ", ".join(f"{k} {ents[k]}" for k in ("PER", "ORG", "LOC", "MISC", "FOO"))
        + f"; tokens tagged `B-`: {b_tags}",
        "",
        *_table([("sentence duplicating an earlier one (first line of each)", 2, _pairs(dups)),
                 ("token line missing the chunk column (3 columns)", 1, str(bad_col["line"] + bad_col["bad"])),
                 ("tag `I-FOO` outside the type set", 1, str(bad_tag["line"] + bad_tag["bad"])),
                 ("file does not end with a newline", 1, str(len(lines) - 1))]),
    ]


# ------------------------------------------------------------------ ner_zh.jsonl
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁沈姚卢姜崔钟谭陆汪范金石廖贾夏方白邹孟熊秦江"
GIVEN = ("伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "涛", "明", "超", "华", "慧",
         "秀英", "建华", "志强", "晓明", "海燕", "子涵", "浩然", "雨桐", "思远", "嘉怡", "俊杰", "一鸣", "欣怡", "文博")
ZH_ENT = {
    "LOC": ("北京", "上海", "广州", "深圳", "杭州", "成都", "武汉", "南京", "西安", "重庆", "天津", "苏州", "长沙",
            "青岛", "厦门", "昆明", "大连", "哈尔滨", "郑州", "济南", "三亚", "桂林", "丽江", "黄山", "西湖", "浙江省",
            "四川省", "云南省", "海南岛", "东京", "巴黎", "伦敦", "纽约", "新加坡", "德国", "日本"),
    "ORG": ("华为", "阿里巴巴", "腾讯", "百度", "京东", "小米公司", "美团", "中国银行", "招商银行", "中国移动",
            "清华大学", "北京大学", "复旦大学", "浙江大学", "武汉大学", "中国科学院", "新华社", "中央电视台", "联合国",
            "世界卫生组织", "海底捞", "顺丰速运", "国家统计局", "上海交通大学", "人民医院"),
}
ZH_TEMPLATES = (
    "{PER}在{ORG}工作了五年。", "{PER}昨天从{LOC}飞往{LOC}。", "{ORG}宣布将在{LOC}建立新的研发中心。",
    "据{ORG}报道，{LOC}今年夏天的气温创下新高。", "{PER}毕业于{ORG}，现在住在{LOC}。",
    "{PER}和{PER}下个月将在{LOC}举行婚礼。", "{ORG}的负责人{PER}表示，公司今年的营收增长明显。",
    "我们在{LOC}的酒店住了三天，服务很好。", "{PER}推荐我去{LOC}的一家火锅店。", "{ORG}在{LOC}开设了第一家门店。",
    "{LOC}{LOC}两地的高铁票已经售罄。", "{PER}是{ORG}的研究员。", "这次去{LOC}旅游，导游{PER}非常热情。",
    "{ORG}与{ORG}签署了合作协议。", "{PER}说{LOC}的小吃很有特色。", "今天{LOC}下了一整天的雨。",
    "{PER}在{LOC}买了一部新手机。", "{ORG}发布了新款耳机，{PER}说音质很好。", "记者{PER}从{LOC}发回报道。",
    "{PER}打算明年去{LOC}读书。", "听说{PER}{PER}已经到了{LOC}。", "在{LOC}出差的时候，{PER}住在朋友家。",
    "{ORG}的快递员把包裹送到了{LOC}。", "{PER}给{ORG}写了一封感谢信。",
    "今天天气很好，适合出去走走。", "这家店的外卖送得很快。", "快递员态度很好，包装也很完整。",
)


def _zh_ner_row(rng: random.Random) -> dict:
    tokens: list[str] = []
    tags: list[str] = []
    for part in ZH_TEMPLATES[rng.randrange(len(ZH_TEMPLATES))].replace("}", "{").split("{"):
        if part in ("PER", "LOC", "ORG"):
            name = (rng.choice(SURNAMES) + rng.choice(GIVEN)) if part == "PER" else rng.choice(ZH_ENT[part])
            tokens += list(name)
            tags += [f"B-{part}"] + [f"I-{part}"] * (len(name) - 1)  # BIO2: every entity opens with B-
        else:
            tokens += list(part)
            tags += ["O"] * len(part)
    return {"tokens": tokens, "tags": tags}


def gen_ner_zh(out: pathlib.Path) -> list[str]:
    rng = random.Random(20240505)
    rows, seen, rec = [], set(), {}
    while len(rows) < 593:
        row = _zh_ner_row(rng)
        key = "".join(row["tokens"])
        if key not in seen:
            seen.add(key)
            rows.append(Line(_dumps(row).encode()))
            rec[id(rows[-1])] = row
    clean = list(rows)
    picks = rng.sample(clean, 5)
    for src in picks[:2]:
        _insert_later(rng, rows, Line(src.data, "duplicate", src), after=src)
    short, long_ = dict(rec[id(picks[2])]), dict(rec[id(picks[3])])
    short["tags"], long_["tags"] = short["tags"][:-1], long_["tags"] + ["O"]

    def per_after_o(tags: list[str]) -> int | None:  # index of a B-PER preceded by O, if any
        return next((i for i, t in enumerate(tags) if t == "B-PER" and i > 0 and tags[i - 1] == "O"), None)

    src = next(rec[id(r)] for r in clean[100:] if per_after_o(rec[id(r)]["tags"]) is not None)
    ill = {"tokens": src["tokens"], "tags": list(src["tags"])}
    ill["tags"][per_after_o(ill["tags"])] = "I-PER"  # O B-PER I-PER -> O I-PER I-PER
    whole = _dumps(rec[id(picks[4])])
    for data, kind in ((_dumps(short), "length_mismatch"), (_dumps(long_), "length_mismatch"),
                       (_dumps(ill), "ill_formed_bio"), (whole[: len(whole) // 2], "malformed_json"),
                       (_dumps({"tokens": [], "tags": []}), "empty_tokens")):
        _insert_later(rng, rows, Line(data.encode(), kind))
    (out / "ner_zh.jsonl").write_bytes(b"".join(r.data + b"\n" for r in rows))
    no = {id(r): i for i, r in enumerate(rows, start=1)}
    kinds = collections.defaultdict(list)
    for r in rows:
        kinds[r.kind].append((no[id(r)], no[id(r.src)]) if r.src else no[id(r)])
    ents = collections.Counter(t[2:] for r in clean for t in rec[id(r)]["tags"] if t.startswith("B-"))
    return [
        "## ner_zh.jsonl",
        "",
        'Chinese NER, character level. JSON Lines: `{"tokens": [one char each], "tags": [BIO2 tag each]}`,',
        "types PER, ORG, LOC (adjacent entities of one type each start with `B-`). UTF-8, LF.",
        "",
        f"- lines: {len(rows)}; distinct clean sentences: {len(clean)}",
        "- entities in clean sentences: " + ", ".join(f"{k} {ents[k]}" for k in ("PER", "ORG", "LOC")),
        "",
        *_table([("exact duplicate of an earlier line", 2, _pairs(kinds["duplicate"])),
                 ("len(tokens) != len(tags) (one tag short; one extra `O`)", 2, _nums(kinds["length_mismatch"])),
                 ("ill-formed BIO: `O I-PER I-PER` with no `B-PER`", 1, _nums(kinds["ill_formed_bio"])),
                 ("malformed JSON (truncated object)", 1, _nums(kinds["malformed_json"])),
                 ('empty sentence `{"tokens": [], "tags": []}`', 1, _nums(kinds["empty_tokens"]))]),
    ]


# ------------------------------------------------------------------ README + entry points
def generate(out_dir: pathlib.Path) -> None:
    """Write every sample corpus and README.md into out_dir (created if missing), byte-for-byte deterministic."""
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sections = [gen(out) for gen in (gen_zh_reviews, gen_en_reviews, gen_parallel, gen_ner_en, gen_ner_zh)]
    names = ("zh_reviews.jsonl", "zh_reviews.garbage_lines.txt", "en_reviews.csv", "zh_en_parallel.tsv",
             "ner_en.conll", "ner_zh.jsonl")
    readme = [
        "# sample_data",
        "",
        "Small synthetic corpora for the dataprep pipeline and its tests. **Generated — do not edit by hand.**",
        "Every file here (this README included) is written by `python sample_data/generate.py` from template",
        "tables with fixed random seeds; the output is byte-for-byte deterministic and a test regenerates it",
        "into a temp dir to check it matches. No public data set is copied.",
        "",
        "The corpora contain **deliberate dirt** so the cleaning stages have something to find; each planted",
        "item is listed below with its 1-based physical line number(s) (lines split on `\\n`). " + LINE_REF,
        "",
        "| file | bytes |",
        "|---|---:|",
        *(f"| `{n}` | {(out / n).stat().st_size} |" for n in names),
        "",
    ]
    for section in sections:
        readme += section
    (out / "README.md").write_bytes(("\n".join(readme).rstrip("\n") + "\n").encode())


if __name__ == "__main__":
    generate(HERE)
    for p in sorted(HERE.iterdir()):
        if p.is_file() and p.name != "generate.py":
            print(f"{p.stat().st_size:>9}  {p.name}")
