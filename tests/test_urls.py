"""Canonical Wikipedia URLs: every accepted form of one article maps to one key."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wideseek_env.corpus.urls import (
    NotWikipediaURL,
    canonical_url,
    normalize_title,
    title_to_url,
    url_to_title,
)

TURING = "https://en.wikipedia.org/wiki/Alan_Turing"


def test_wiki_path_is_canonicalised():
    assert canonical_url("/wiki/Alan_Turing") == TURING


def test_wiki_path_without_leading_slash_is_canonicalised():
    assert canonical_url("wiki/Alan_Turing") == TURING


def test_full_https_url_is_unchanged():
    assert canonical_url(TURING) == TURING


def test_http_url_maps_to_https():
    assert canonical_url("http://en.wikipedia.org/wiki/Alan_Turing") == TURING


def test_mobile_host_maps_to_desktop_host():
    assert canonical_url("https://en.m.wikipedia.org/wiki/Alan_Turing") == TURING


def test_url_without_scheme_is_accepted():
    assert canonical_url("en.wikipedia.org/wiki/Alan_Turing") == TURING


def test_index_php_title_query_is_canonicalised():
    assert canonical_url("https://en.wikipedia.org/w/index.php?title=Alan_Turing&oldid=1") == TURING


def test_index_php_title_with_encoded_spaces_is_canonicalised():
    url = "https://en.wikipedia.org/w/index.php?title=List%20of%20capitals%20of%20France"
    assert canonical_url(url) == "https://en.wikipedia.org/wiki/List_of_capitals_of_France"


def test_spaces_become_underscores():
    assert canonical_url("/wiki/Alan Turing") == TURING


def test_runs_of_underscores_and_spaces_collapse():
    assert canonical_url("/wiki/_Alan__ _Turing_") == TURING


def test_percent_encoding_is_decoded():
    assert canonical_url("/wiki/Caf%C3%A9_Tacuba") == "https://en.wikipedia.org/wiki/Café_Tacuba"


def test_lone_percent_sign_is_kept():
    assert canonical_url("/wiki/100%_Pure") == "https://en.wikipedia.org/wiki/100%_Pure"


def test_first_letter_is_upper_cased():
    assert canonical_url("/wiki/alan_Turing") == TURING


def test_case_after_the_first_letter_is_kept():
    assert canonical_url("/wiki/IPhone_X") == "https://en.wikipedia.org/wiki/IPhone_X"


def test_fragment_is_dropped():
    assert canonical_url("https://en.wikipedia.org/wiki/Alan_Turing#Early_life") == TURING


def test_fragment_of_wiki_path_is_dropped():
    assert canonical_url("/wiki/Alan_Turing#Early_life") == TURING


def test_trailing_slash_is_dropped():
    assert canonical_url("https://en.wikipedia.org/wiki/Alan_Turing/") == TURING


def test_question_mark_in_wiki_path_is_part_of_the_title():
    assert canonical_url("/wiki/And_Then_What?") == "https://en.wikipedia.org/wiki/And_Then_What?"


def test_bare_title_is_accepted_when_allowed():
    assert canonical_url("Alan Turing", allow_bare_title=True) == TURING


@pytest.mark.parametrize("text", ["Alan Turing", "Alan_Turing"])
def test_bare_title_is_rejected_by_default(text):
    with pytest.raises(NotWikipediaURL):
        canonical_url(text)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/wiki/Alan_Turing",
        "https://de.wikipedia.org/wiki/Alan_Turing",
        "ftp://en.wikipedia.org/wiki/Alan_Turing",
        "https://en.wikipedia.org/",
        "https://en.wikipedia.org/w/index.php?search=turing",
    ],
)
def test_non_english_wikipedia_article_urls_are_rejected(url):
    with pytest.raises(NotWikipediaURL):
        canonical_url(url)


@pytest.mark.parametrize("url", ["", "   ", "/wiki/", "/wiki/_"])
def test_empty_urls_and_titles_are_rejected(url):
    with pytest.raises(NotWikipediaURL):
        canonical_url(url)


def test_non_string_url_is_rejected():
    with pytest.raises(NotWikipediaURL):
        canonical_url(None)  # type: ignore[arg-type]


def test_title_to_url_builds_the_canonical_url():
    assert title_to_url("alan turing") == "https://en.wikipedia.org/wiki/Alan_turing"


def test_url_to_title_gives_a_readable_title():
    assert url_to_title("/wiki/Alan_Turing") == "Alan Turing"


def test_normalized_title_is_returned_unchanged():
    assert normalize_title("Lilo_&_Stitch:_The_Series") == "Lilo_&_Stitch:_The_Series"


def test_non_breaking_space_is_treated_as_a_space():
    assert normalize_title("Alan\u00a0Turing") == "Alan_Turing"


@given(st.text(max_size=30))
def test_normalize_title_is_idempotent(title):
    once = normalize_title(title)
    assert normalize_title(once) == once


@given(st.text(alphabet=st.sampled_from("aB_ %2C9é"), min_size=1, max_size=12))
def test_path_full_and_mobile_forms_of_a_title_agree(title):
    try:
        expected = canonical_url("/wiki/" + title)
    except NotWikipediaURL:
        return
    assert canonical_url("https://en.wikipedia.org/wiki/" + title) == expected
    assert canonical_url("http://en.m.wikipedia.org/wiki/" + title) == expected
