"""Made-up Japanese customers: names, contact data and mall-style identifiers.

Emails use reserved example domains; Rakuten and Amazon buyers carry their mall's relay
address, as they do in real order data.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np

from domain.platforms import Platform

FAMILY_NAMES = (
    ("佐藤", "sato"), ("鈴木", "suzuki"), ("高橋", "takahashi"), ("田中", "tanaka"),
    ("伊藤", "ito"), ("渡辺", "watanabe"), ("山本", "yamamoto"), ("中村", "nakamura"),
    ("小林", "kobayashi"), ("加藤", "kato"), ("吉田", "yoshida"), ("山田", "yamada"),
    ("佐々木", "sasaki"), ("山口", "yamaguchi"), ("松本", "matsumoto"), ("井上", "inoue"),
    ("木村", "kimura"), ("林", "hayashi"), ("斎藤", "saito"), ("清水", "shimizu"),
    ("山崎", "yamazaki"), ("森", "mori"), ("池田", "ikeda"), ("橋本", "hashimoto"),
    ("阿部", "abe"), ("石川", "ishikawa"), ("前田", "maeda"), ("藤田", "fujita"),
    ("小川", "ogawa"), ("岡田", "okada"),
)  # fmt: skip
WOMEN = (
    ("花子", "hanako"), ("美咲", "misaki"), ("陽子", "yoko"), ("恵", "megumi"),
    ("由美", "yumi"), ("裕子", "yuko"), ("直子", "naoko"), ("真由美", "mayumi"),
    ("愛", "ai"), ("さくら", "sakura"), ("明美", "akemi"), ("久美子", "kumiko"),
    ("彩", "aya"), ("結衣", "yui"), ("麻衣", "mai"), ("千尋", "chihiro"),
    ("奈々", "nana"), ("智子", "tomoko"), ("香織", "kaori"), ("舞", "mai"),
)  # fmt: skip
MEN = (
    ("翔太", "shota"), ("大輔", "daisuke"), ("健太", "kenta"), ("誠", "makoto"),
    ("浩", "hiroshi"), ("拓也", "takuya"), ("直樹", "naoki"), ("和也", "kazuya"),
    ("隆", "takashi"), ("亮", "ryo"),
)  # fmt: skip
EMAIL_DOMAINS = ("example.jp", "example.co.jp", "example.ne.jp", "example.com")
EMAIL_DOMAIN_WEIGHTS = np.array([0.45, 0.2, 0.2, 0.15])
MOBILE_PREFIXES = ("090", "080", "070")
RAKUTEN_SHOP_NUMBER = "389212"
_ALPHANUMERIC = "abcdefghijklmnopqrstuvwxyz0123456789"


@dataclass(frozen=True, slots=True)
class Person:
    external_id: str
    display_name: str
    email: str | None
    phone: str | None
    birth_date: date | None


def _mobile(rng: np.random.Generator) -> str:
    prefix = MOBILE_PREFIXES[int(rng.integers(len(MOBILE_PREFIXES)))]
    return f"{prefix}-{int(rng.integers(1000, 10000))}-{int(rng.integers(0, 10000)):04d}"


def _token(rng: np.random.Generator, length: int, alphabet: str = _ALPHANUMERIC) -> str:
    return "".join(alphabet[i] for i in rng.integers(len(alphabet), size=length))


def make_person(
    rng: np.random.Generator, platform: Platform, number: int, acquired_at: datetime
) -> Person:
    """A customer as `platform` would hand them over; `number` makes the ids unique."""
    family, family_roman = FAMILY_NAMES[int(rng.integers(len(FAMILY_NAMES)))]
    given_names = WOMEN if rng.random() < 0.78 else MEN
    given, given_roman = given_names[int(rng.integers(len(given_names)))]
    name = f"{family} {given}"
    age_days = int(rng.integers(22 * 365, 68 * 365))
    birth = (acquired_at - timedelta(days=age_days)).date()
    if platform is Platform.SHOPIFY:
        domain = EMAIL_DOMAINS[int(rng.choice(len(EMAIL_DOMAINS), p=EMAIL_DOMAIN_WEIGHTS))]
        email = f"{given_roman}.{family_roman}{number}@{domain}"
        phone = _mobile(rng) if rng.random() < 0.6 else None
        return Person(
            str(7_100_000_000 + number),
            name,
            email,
            phone,
            birth if rng.random() < 0.4 else None,
        )
    if platform is Platform.RAKUTEN:
        relay = f"{_token(rng, 10, '0123456789abcdef')}s1@pc.fw.rakuten.ne.jp"
        return Person(f"rk-{number:08d}", name, relay, _mobile(rng), None)
    relay = f"{_token(rng, 15)}@marketplace.amazon.co.jp"
    # Amazon gives a buyer name on some orders only, and never a phone for marketing.
    return Person(f"amzn-{number:08d}", name if rng.random() < 0.5 else "", relay, None, None)


def order_id(platform: Platform, number: int, ordered_at: datetime) -> str:
    """A mall-shaped, unique order number."""
    if platform is Platform.SHOPIFY:
        return str(5_200_000_000 + number)
    if platform is Platform.RAKUTEN:
        day = (ordered_at + timedelta(hours=9)).strftime("%Y%m%d")
        return f"{RAKUTEN_SHOP_NUMBER}-{day}-{number:010d}"
    # 3-7-7 digits; a multiplier coprime to 10 spreads consecutive numbers without collisions.
    scrambled = (number * 7_919_113) % 10**14
    return f"503-{scrambled // 10**7:07d}-{scrambled % 10**7:07d}"


def subscription_id(platform: Platform, number: int, started_at: datetime) -> str:
    if platform is Platform.SHOPIFY:
        return f"gid://shopify/SubscriptionContract/{31_000_000 + number}"
    day = (started_at + timedelta(hours=9)).strftime("%Y%m%d")
    return f"{RAKUTEN_SHOP_NUMBER}-{day}-{number:08d}-teiki"
