"""The task generator (``wideseek_env.tasks.generate``) on a small OTT-QA-format corpus built here,
and once on the whole shared corpus."""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path

import pytest

from wideseek_env.corpus.build import build_corpus
from wideseek_env.corpus.store import PAGES_FILE, PageStore
from wideseek_env.evaluation import score_answer
from wideseek_env.evaluation.preprocess import norm_str
from wideseek_env.tasks import load_tasks
from wideseek_env.tasks.attributes import extract_attributes
from wideseek_env.tasks.generate import generate_tasks, names_entity
from wideseek_env.tasks.queries import describe_page, mentions_title

W = "/wiki/"

# ----------------------------------------------------------------------------- the small corpus

RUNNERS = {
    2001: [("Abel Kiprop", "April 29 , 1947"), ("Brian Otieno", "3 May 1970"), ("Carl Mutai", "June 5 , 1975"),
           ("David Wanjiru", "12 August 1980"), ("Eliud Kamau", "October 23 , 1959")],
    2002: [("Felix Limo", "1 January 1972"), ("Abel Kiprop", "April 29 , 1947"), ("Gideon Rotich", "July 7 , 1977"),
           ("Henry Biwott", "9 September 1979"), ("Isaac Keter", "November 30 , 1968")],
    2003: [("James Kosgei", "2 February 1982"), ("Kevin Ngeny", "March 14 , 1973"), ("Felix Limo", "1 January 1972"),
           ("Luke Cheruiyot", "21 June 1984"), ("Moses Tanui", "December 20 , 1965")],
}  # fmt: skip
PLAYERS = [  # (name, birth date or None, club)
    ("Nils Berg", "4 March 1990", "Examplia Rovers"), ("Olaf Dahl", "May 16 , 1988", "Port Examplia"),
    ("Per Eklund", "18 June 1992", "Examplia Rovers"), ("Rune Falk", "August 2 , 1985", "North Examplia"),
    ("Sven Gran", "27 September 1991", "Port Examplia"), ("Tor Holm", "January 11 , 1987", "Examplia Athletic"),
    ("Ulf Isaksen", None, "North Examplia"),
]  # fmt: skip
CLUBS = [("Examplia Rovers F.C.", "Examplia City", 1903), ("Port Examplia F.C.", "Port Examplia", 1911),
         ("North Examplia F.C.", "Northtown", 1923), ("Examplia Athletic F.C.", "Eastville", 1931),
         ("Southside United F.C.", "Southside", 1947)]  # fmt: skip
LIGHTHOUSES = [("Cape Grim Light", "Cape Grim", "1857"), ("Storm Point Light", "Storm Point", "1868"),
               ("Gull Rock Light", "Gull Island", "1872"), ("North Head Light", "North Head", "1881"),
               ("Seal Bay Light", "Seal Bay", "1893"), ("Harbour Light", "Old Harbour", "1902")]  # fmt: skip


def _link(name: str) -> str:
    return W + name.replace(" ", "_")


def _cell(text: str, link: str | None = None):
    return [text, [link] if link else []]


def _write_corpus_source(src: Path) -> None:
    tables, passages = [], []
    for year, runners in RUNNERS.items():
        title = f"{year} Examplia City Marathon"
        tables.append({
            "url": "https://en.wikipedia.org/wiki/" + title.replace(" ", "_"), "title": title,
            "section_title": "Results", "section_text": "", "uid": f"marathon_{year}",
            "intro": f"The {year} Examplia City Marathon was the {year - 1980}th running of the annual race .",
            "header": [_cell(h) for h in ("Rank", "Athlete", "Country", "Time")],
            "data": [[_cell(str(i + 1)), _cell(name, _link(name)), _cell("Kenya"), _cell(f"2:0{i}:1{i}")]
                     for i, (name, _) in enumerate(runners)],
        })  # fmt: skip
    people = {name: born for runners in RUNNERS.values() for name, born in runners}
    for name, born in people.items():
        passages.append({"url": _link(name), "text": f"{name} ( born {born} ) is a Kenyan long-distance runner ."})
    tables.append({
        "url": "https://en.wikipedia.org/wiki/Examplia_national_football_team",
        "title": "Examplia national football team", "section_title": "Players -- Current squad",
        "section_text": "", "uid": "examplia_squad", "intro": "The Examplia national football team represents Examplia .",
        "header": [_cell(h) for h in ("No.", "Player", "Club")],
        "data": [[_cell(str(i + 1)), _cell(name, _link(name)), _cell(club)] for i, (name, _, club) in enumerate(PLAYERS)],
    })  # fmt: skip
    for name, born, _ in PLAYERS:
        life = f"( born {born} ) " if born else ""
        passages.append({"url": _link(name), "text": f"{name} {life}is an Examplian footballer who plays as a defender ."})
    tables.append({
        "url": "https://en.wikipedia.org/wiki/Examplia_Premier_League", "title": "Examplia Premier League",
        "section_title": "Clubs", "section_text": "The league has five clubs .", "uid": "examplia_league",
        "intro": "The Examplia Premier League is the top football league of Examplia .",
        "header": [_cell(h) for h in ("Club", "City", "Stadium")],
        "data": [[_cell(name, _link(name)), _cell(city), _cell(f"{city} Park")] for name, city, _ in CLUBS],
    })  # fmt: skip
    for name, city, year in CLUBS:
        passages.append({"url": _link(name), "text": f"{name} is a football club based in {city} . The club was founded in {year} ."})
    tables.append({
        "url": "https://en.wikipedia.org/wiki/List_of_lighthouses_in_Examplia",
        "title": "List of lighthouses in Examplia", "section_title": "Lighthouses", "section_text": "",
        "uid": "lighthouses", "intro": "This is a list of lighthouses in Examplia .",
        "header": [_cell(h) for h in ("Name", "Location", "Year built")],
        "data": [[_cell(n), _cell(loc), _cell(year)] for n, loc, year in LIGHTHOUSES],
    })  # fmt: skip
    src.mkdir(parents=True)
    with open(src / "train_tables.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(t) + "\n" for t in tables)
    with open(src / "train_passages.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(p) + "\n" for p in passages)


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gen")
    _write_corpus_source(root / "src")
    build_corpus("ottqa", root / "src", root / "corpus", progress=False)
    return root / "corpus"


@pytest.fixture(scope="module")
def small_tasks(small_corpus, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("tasks")
    stats = generate_tasks(small_corpus, out, seed=0, progress=False, kind_mix={}, test_fraction=0.3)
    return out, stats


def _all_tasks(out: Path):
    return list(load_tasks(out / "train.jsonl")) + list(load_tasks(out / "test.jsonl"))


def _files(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in ("train.jsonl", "test.jsonl", "stats.json")}


# ----------------------------------------------------------------------------------------- tests


def test_every_kind_is_produced(small_tasks):
    out, stats = small_tasks
    tasks = _all_tasks(out)
    kinds = {t.kind for t in tasks}
    assert kinds == {"transcribe", "enrich", "union"}
    assert stats["tasks"]["total"] == len(tasks)
    assert stats["tasks"]["by_kind"]["union"] >= 1
    union = next(t for t in tasks if t.kind == "union")
    # The union joins pages of one kind; its first column says which page a row comes from.
    assert union.required_columns[0] == "year"
    assert {row["year"] for row in union.gold} <= {"2001", "2002", "2003"}
    assert len({row["year"] for row in union.gold}) >= 2
    assert union.unique_columns == ["year", "athlete"]
    enrich = {t.provenance["tables"][0]: t for t in tasks if t.kind == "enrich"}
    squad = enrich["examplia_squad"]  # one player's page has no birth date: "list" mode without him
    assert squad.provenance["mode"] == "list"
    assert [row["player"] for row in squad.gold] == [p[0] for p in PLAYERS if p[1]]
    assert "Olaf Dahl" in squad.query and "Ulf Isaksen" not in squad.query
    clubs = enrich["examplia_league"]
    assert [row["yearfounded"] for row in clubs.gold] == [str(c[2]) for c in CLUBS]
    assert clubs.columns["yearfounded"].metric == "number_near" and clubs.columns["yearfounded"].tolerance == 0
    marathon = enrich["marathon_2001"]
    assert marathon.provenance["mode"] == "set"
    born = {row["athlete"]: row.get("dateofbirth") or row.get("yearofbirth") for row in marathon.gold}
    assert born["Abel Kiprop"] in ("April 29, 1947", "1947")


def test_generated_query_format(small_tasks):
    for task in _all_tasks(small_tasks[0]):
        assert "```markdown\n{data_content}\n```" in task.query
        for column in task.display_columns:
            assert column in task.query
        assert task.language == "en"


def test_gold_scores_one_and_empty_scores_zero(small_tasks):
    for task in _all_tasks(small_tasks[0]):
        gold = score_answer(task, task.gold_markdown())
        assert gold.success == 1.0 and gold.item_f1 == 1.0, task.id
        assert score_answer(task, "").item_f1 == 0.0
        assert score_answer(task, "I could not find anything.").item_f1 == 0.0


def test_enrich_and_union_queries_do_not_name_their_pages(small_tasks, small_corpus):
    store = PageStore(small_corpus / PAGES_FILE)
    titles = {t.uid: t.title for t in store.iter_tables()}
    checked = 0
    for task in _all_tasks(small_tasks[0]):
        if task.kind in ("enrich", "union"):
            page_titles = [titles[uid] for uid in task.provenance["tables"]]
            assert not mentions_title(task.query, page_titles), task.query
            for title in page_titles:
                assert title.lower() not in task.query.lower()
            checked += 1
        else:  # transcribe queries may name their page
            assert titles[task.provenance["tables"][0]] in task.query
    assert checked >= 4
    store.close()


def test_every_gold_cell_is_in_its_pages(small_tasks, small_corpus):
    store = PageStore(small_corpus / PAGES_FILE)
    for task in _all_tasks(small_tasks[0]):
        texts = []
        for url in task.provenance["pages"]:
            page = store.get(url)
            texts.append(norm_str(page.title + "\n" + page.text))
        for row in task.gold:
            for value in row.values():
                assert value and any(norm_str(value) in text for text in texts), (task.id, value)
    store.close()


def test_split_has_no_table_in_both(small_tasks):
    out, stats = small_tasks
    train = list(load_tasks(out / "train.jsonl"))
    test = list(load_tasks(out / "test.jsonl"))
    assert train and test
    train_tables = {uid for t in train for uid in t.provenance["tables"]}
    test_tables = {uid for t in test for uid in t.provenance["tables"]}
    assert not train_tables & test_tables
    assert stats["tasks"]["train"]["total"] == len(train)


def test_same_seed_same_bytes_other_seed_other_tasks(small_corpus, small_tasks, tmp_path):
    out, _ = small_tasks
    again = generate_tasks(small_corpus, tmp_path / "a", seed=0, progress=False, kind_mix={}, test_fraction=0.3)
    assert again["reused"] is False
    assert _files(tmp_path / "a") == _files(out)
    generate_tasks(small_corpus, tmp_path / "b", seed=1, progress=False, kind_mix={}, test_fraction=0.3)
    a = sorted(t.query for t in _all_tasks(out))
    b = sorted(t.query for t in _all_tasks(tmp_path / "b"))
    assert a != b


def test_rerun_reuses_and_param_change_regenerates(small_corpus, tmp_path):
    first = generate_tasks(small_corpus, tmp_path, seed=3, progress=False)
    assert first["reused"] is False
    mtime = (tmp_path / "train.jsonl").stat().st_mtime_ns
    second = generate_tasks(small_corpus, tmp_path, seed=3, progress=False)
    assert second["reused"] is True
    assert (tmp_path / "train.jsonl").stat().st_mtime_ns == mtime
    assert {k: v for k, v in second.items() if k not in ("reused", "seconds")} == {
        k: v for k, v in first.items() if k not in ("reused", "seconds")
    }
    # A damaged task file is not trusted: it is regenerated.
    (tmp_path / "train.jsonl").write_text("garbage\n")
    assert generate_tasks(small_corpus, tmp_path, seed=3, progress=False)["reused"] is False
    assert generate_tasks(small_corpus, tmp_path, seed=3, min_rows=5, progress=False)["reused"] is False
    assert not list(tmp_path.glob(".tmp-*"))


def test_default_mix_balances_kinds(small_corpus, tmp_path):
    stats = generate_tasks(small_corpus, tmp_path, seed=0, progress=False)
    by_kind = stats["tasks"]["by_kind"]
    union = by_kind["union"]
    assert union >= 1
    assert by_kind["transcribe"] <= 2 * union + 1 and by_kind["enrich"] <= 2 * union + 1
    assert sum(stats["dropped_by_balance"].values()) > 0


def test_answerability_filter_drops_cells_rows_and_tasks(small_corpus, tmp_path):
    corpus = tmp_path / "corpus"
    import shutil

    shutil.copytree(small_corpus, corpus)
    db = sqlite3.connect(corpus / PAGES_FILE)
    # The lighthouse page loses one "Year built" value (a non-key cell: its column goes) and one
    # lighthouse name (a key cell: its row goes); the league page loses its whole table.
    db.execute("UPDATE pages SET text = replace(text, '1868', '') WHERE url LIKE '%List_of_lighthouses%'")
    db.execute("UPDATE pages SET text = replace(text, 'Seal Bay Light', '') WHERE url LIKE '%List_of_lighthouses%'")
    db.execute("UPDATE pages SET text = 'The Examplia Premier League.' WHERE url LIKE '%Examplia_Premier_League'")
    db.commit()
    db.close()
    stats = generate_tasks(corpus, tmp_path / "out", seed=0, progress=False, kind_mix={})
    tasks = {(t.kind, t.provenance["tables"][0]): t for t in _all_tasks(tmp_path / "out")}
    lighthouses = tasks[("transcribe", "lighthouses")]
    assert lighthouses.required_columns == ["name", "location"]
    assert [row["name"] for row in lighthouses.gold] == [n for n, _, _ in LIGHTHOUSES if n != "Seal Bay Light"]
    assert ("transcribe", "examplia_league") not in tasks
    # The enrich task of the league keeps its club names only where they are answerable: none is.
    assert ("enrich", "examplia_league") not in tasks
    answerability = stats["answerability"]
    assert answerability["cells_failed"] >= 2 + 5
    assert answerability["columns_dropped"] >= 1 and answerability["rows_dropped"] >= 1
    assert answerability["tasks_dropped"] >= 2
    assert stats["filtered"]["transcribe: unanswerable (too few answerable rows or columns)"] >= 1


def test_attribute_patterns():
    assert extract_attributes("Jim Ryun (born April 29, 1947) is an American runner.") == {
        "birth_date": "April 29, 1947", "birth_year": "1947"
    }
    life = extract_attributes("William Hayward (23 October 1867-7 February 1932) was a farmer.")
    assert life["birth_date"] == "23 October 1867" and life["death_date"] == "7 February 1932"
    assert extract_attributes("Rebecca Evans (born 1976) is a Welsh politician.") == {"birth_year": "1976"}
    assert extract_attributes("Amanda Everlove (born 1988 or 1989) is an American swimmer.") == {}
    assert extract_attributes("John Ricco (born c. 1968) is an executive.") == {}
    film = extract_attributes("The Birds is a 1963 American horror film directed by Alfred Hitchcock. It stars Tippi Hedren.")
    assert film == {"release_year": "1963", "director": "Alfred Hitchcock"}
    club = extract_attributes("Zarautz KE is a club holding games at Estadio Asti, which has a capacity of 1,000.")
    assert "capacity" not in club  # a club's page: the capacity is its ground's
    assert extract_attributes("Bourne is a town. The population was 19,754 at the 2010 census.") == {
        "population": "19,754"
    }
    two = extract_attributes("X was founded in 1901. The stadium was established in 1950.")
    assert "founded" not in two  # ambiguous


def test_page_descriptions_avoid_the_title():
    assert describe_page("List of airports in Alberta") == "airports in Alberta"
    assert describe_page("Kenya at the 2008 Summer Olympics") == "Kenya at the Summer Olympics in 2008"
    assert describe_page("1988 in country music") == "country music in 1988"
    assert describe_page("Strictly Come Dancing (series 11)") == "series 11 of Strictly Come Dancing"
    assert describe_page("Shot put") is None
    for title in ("List of airports in Alberta", "Kenya at the 2008 Summer Olympics", "The Real World: Sydney",
                  "Solar power in Germany", "2010–11 Premier League"):
        phrase = describe_page(title)
        assert phrase and not mentions_title(phrase, [title])
    assert mentions_title("...the 2008 summer olympics!", ["2008 Summer Olympics"])
    assert not mentions_title("the 12008 summer olympics", ["2008 Summer Olympics"])


def test_entity_cells_must_name_their_link():
    assert names_entity("Joshua Cheptegei (UGA)", "https://en.wikipedia.org/wiki/Joshua_Cheptegei")
    assert names_entity("Batman", "https://en.wikipedia.org/wiki/Batman_(1989_film)")
    assert not names_entity("Old River Road in Niskayuna", "https://en.wikipedia.org/wiki/Niskayuna,_New_York")


# ------------------------------------------------------------------------------ the full corpus


@pytest.mark.slow
def test_full_shared_corpus(ottqa_corpus):
    """>= 2,000 tasks, every kind >= 15%, answerable and scoring 1 on a sample (cached on rerun)."""
    from wideseek_env.paths import default_tasks_dir

    out = default_tasks_dir()
    stats = generate_tasks(ottqa_corpus, out, seed=0, progress=False)
    total = stats["tasks"]["total"]
    assert total >= 2000
    for kind in ("transcribe", "enrich", "union"):
        assert stats["tasks"]["by_kind"][kind] >= 0.15 * total, kind
    assert stats["answerability"]["cells_checked"] > 100_000
    tasks = _all_tasks(out)
    assert len(tasks) == total
    assert len({t.id for t in tasks}) == total
    train_tables = {u for t in load_tasks(out / "train.jsonl") for u in t.provenance["tables"]}
    test_tables = {u for t in load_tasks(out / "test.jsonl") for u in t.provenance["tables"]}
    assert not train_tables & test_tables
    store = PageStore(ottqa_corpus / PAGES_FILE)
    for task in random.Random(0).sample(tasks, 150):
        gold = score_answer(task, task.gold_markdown())
        assert gold.success == 1.0, task.id
        assert score_answer(task, "").item_f1 == 0.0
        texts = [norm_str(p.title + "\n" + p.text) for p in store.get_many(task.provenance["pages"]) if p]
        for row in task.gold:
            for value in row.values():
                assert any(norm_str(value) in text for text in texts), (task.id, value)
    store.close()
