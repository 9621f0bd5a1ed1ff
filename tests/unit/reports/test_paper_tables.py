"""The paper's numbers as transcribed (Tables 2 and 4 of Kim, Jeong, Shin, CVPR 2020) and the column
a dataset's results are set beside."""

from m2m_pipeline.reports import PAPER, paper_key, paper_numbers


def test_paper_numbers_transcribed():
    assert PAPER["reuters"]["ERM"] == {"bacc": 59.8, "bacc_std": 1.17, "gm": 53.8, "gm_std": 1.75}
    assert PAPER["reuters"]["DRS"]["bacc"] == 62.4 and PAPER["reuters"]["M2m"]["gm"] == 60.5
    assert PAPER["reuters"]["LDAM-M2m"] == {"bacc": 70.0, "bacc_std": 0.68, "gm": 63.9, "gm_std": 0.49}
    assert PAPER["twitter"]["DRS"]["bacc"] == 77.8 and PAPER["twitter"]["LDAM-M2m"]["gm"] == 76.0
    assert PAPER["twitter"]["Focal"] == {"bacc": 74.2, "bacc_std": 2.35, "gm": 70.4, "gm_std": 4.03}
    assert PAPER["celeba5"]["SMOTE"]["bacc"] == 72.8 and PAPER["sun397"]["LDAM"]["gm"] == 14.4
    c10 = PAPER["cifar10-lt-r100"]["M2m"]
    assert (c10["bacc"], c10["gm"], c10["major"], c10["minor"]) == (78.3, 77.8, 93.3, 74.6)
    assert PAPER["cifar10-lt-r10"]["RW"]["gm"] == 86.5
    assert PAPER["cifar100-lt-r10"]["LDAM"] == {"bacc": 54.7, "bacc_std": 0.16, "gm": 44.1, "gm_std": 0.53}
    assert PAPER["imagenet-lt"]["LDAM-DRW"]["bacc"] == 43.0 and set(PAPER["imagenet-lt"]) == {
        "ERM", "DRS", "M2m", "LDAM", "LDAM-DRW", "LDAM-M2m"}
    for col in ("cifar10-lt-r100", "cifar100-lt-r10", "celeba5", "sun397", "twitter", "reuters"):
        assert len(PAPER[col]) == 11 and "DRW" not in PAPER[col]


def test_paper_key():
    assert paper_key("cifar10-lt") == "cifar10-lt-r100"
    assert paper_key("cifar100-lt", 10) == "cifar100-lt-r10"
    assert paper_key("cifar10-lt", 50) is None
    assert paper_key("reuters") == "reuters" and paper_key("digits") is None and paper_key("text:x") is None
    assert paper_numbers("digits") == {}
