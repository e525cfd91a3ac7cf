"""The demo shop's catalogue: skincare and health food, prices in JPY including tax."""

from dataclasses import dataclass

# Orders below this pay shipping; subscription deliveries ship free.
FREE_SHIPPING_FROM = 5_000
SHIPPING_FEE = 550
# 定期購入 price: 15 % off, rounded down to 10 yen.
SUBSCRIPTION_DISCOUNT = 0.15


@dataclass(frozen=True, slots=True)
class DemoProduct:
    sku: str
    title: str
    price: int
    # Relative chance of being picked when a customer adds something to a basket.
    popularity: float
    subscribable: bool = False

    @property
    def subscription_price(self) -> int:
        return int(self.price * (1 - SUBSCRIPTION_DISCOUNT)) // 10 * 10


TRIAL_SET = DemoProduct("KZ-TRY-7", "初回限定 お試し7日間セット", 1_980, 0.0)

CATALOGUE: tuple[DemoProduct, ...] = (
    DemoProduct("KZ-LTN-150", "薬用美白化粧水 150ml", 3_520, 9.0, subscribable=True),
    DemoProduct("KZ-SRM-30", "ビタミンC美容液 30ml", 4_980, 7.0, subscribable=True),
    DemoProduct("KZ-MLK-120", "高保湿乳液 120ml", 3_080, 5.0),
    DemoProduct("KZ-CRM-50", "セラミドクリーム 50g", 4_400, 5.0),
    DemoProduct("KZ-CLN-150", "クレンジングオイル 150ml", 2_640, 6.0),
    DemoProduct("KZ-WSH-100", "泡洗顔フォーム 100g", 1_760, 6.0),
    DemoProduct("KZ-SUN-50", "UVミルク SPF50+ 50ml", 2_200, 4.0),
    DemoProduct("KZ-MSK-7", "集中保湿シートマスク 7枚入", 1_980, 4.0),
    DemoProduct("KZ-EYE-15", "エイジングケア アイクリーム 15g", 5_280, 2.0),
    DemoProduct("KZ-AIO-80", "オールインワンジェル 80g", 3_960, 6.0, subscribable=True),
    DemoProduct("KZ-AOJ-30", "国産大麦若葉の青汁 30包", 3_240, 8.0, subscribable=True),
    DemoProduct("KZ-ENZ-720", "植物発酵 酵素ドリンク 720ml", 5_400, 4.0, subscribable=True),
    DemoProduct("KZ-LAC-60", "乳酸菌サプリ 60粒", 2_980, 7.0, subscribable=True),
    DemoProduct("KZ-COL-30", "コラーゲンペプチド 30包", 4_320, 5.0, subscribable=True),
    DemoProduct("KZ-VIT-90", "マルチビタミン&ミネラル 90粒", 1_980, 4.0),
    DemoProduct("KZ-DHA-120", "DHA・EPA 120粒", 3_780, 3.0, subscribable=True),
    DemoProduct("KZ-VIN-720", "飲む黒酢 はちみつ入り 720ml", 2_916, 3.0),
    DemoProduct("KZ-PRO-1K", "ソイプロテイン 抹茶味 1kg", 4_860, 3.0),
    DemoProduct("KZ-AMA-6", "米麹甘酒 6本セット", 2_592, 2.0),
    DemoProduct("KZ-TEA-30", "ルイボスティー 30包", 1_620, 3.0),
    TRIAL_SET,
)

SUBSCRIBABLE: tuple[DemoProduct, ...] = tuple(p for p in CATALOGUE if p.subscribable)
BUYABLE: tuple[DemoProduct, ...] = tuple(p for p in CATALOGUE if p.popularity > 0)
