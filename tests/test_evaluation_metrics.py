"""Step 6: the deterministic cell metrics, in both modes where they differ."""

from wideseek_env.evaluation.metrics import date_near, exact_match, number_near, url_match


def test_exact_match_is_case_insensitive():
    assert exact_match("Harvard", "harvard") == 1.0
    assert exact_match("Harvard", "Yale") == 0.0


def test_number_near_inside_and_outside_tolerance():
    # |104 - 100| = 4 <= 100 * 0.05 = 5; |106 - 100| = 6 > 5.
    assert number_near("104", "100", 0.05) == 1.0
    assert number_near("106", "100", 0.05) == 0.0
    assert number_near("95", "100", 0.05) == 1.0
    assert number_near("94.9", "100", 0.05) == 0.0
    # tolerance 0 means equal values.
    assert number_near("100", "100.0", 0.0) == 1.0


def test_number_near_percent_is_divided_by_100():
    assert number_near("5%", "0.05", 0.0) == 1.0
    assert number_near("5.2%", "5%", 0.05) == 1.0  # 0.052 vs 0.05: diff 0.002 <= 0.0025


def test_number_near_non_numbers_equal_only_if_same_text():
    assert number_near("NULL", "NULL", 0.05) == 1.0
    assert number_near("NULL", "12", 0.05) == 0.0


def test_number_near_boundary_float_rounding_default_vs_widesearch():
    # |1.1 - 1.0| is 0.10000000000000009 in floating point: just over 1.0 * 0.1.
    assert number_near("1.1", "1.0", 0.1) == 1.0
    assert number_near("1.1", "1.0", 0.1, compat="widesearch") == 0.0


def test_date_near_within_and_beyond_31_days():
    assert date_near("1947-05-30", "1947-04-29") == 1.0  # 31 days
    assert date_near("1947-05-31", "1947-04-29") == 0.0  # 32 days
    assert date_near("April 29, 1947", "1947-04-29") == 1.0


def test_date_near_non_dates_default_vs_widesearch():
    assert date_near("incumbent", "incumbent") == 1.0
    assert date_near("NA", "incumbent") == 0.0
    assert date_near("vacant", "incumbent", compat="widesearch") == 1.0
    assert date_near("NA", "1947-04-29") == 0.0


def test_url_match_compares_host_sets():
    assert url_match("https://www.harvard.edu/admissions", "https://www.harvard.edu/") == 1.0
    assert url_match("https://www.yale.edu/", "https://www.harvard.edu/") == 0.0
    assert url_match("see https://a.org and https://b.org", "https://b.org/x https://a.org/y") == 1.0


def test_url_match_default_reads_bare_domains_and_ignores_www():
    assert url_match("harvard.edu", "https://www.harvard.edu/") == 1.0
    assert url_match("harvard.edu", "https://www.harvard.edu/", compat="widesearch") == 0.0
    assert url_match("https://harvard.edu", "https://www.harvard.edu/", compat="widesearch") == 0.0


def test_url_match_without_urls_default_vs_widesearch():
    assert url_match("none", "N/A", compat="widesearch") == 1.0
    assert url_match("none", "N/A") == 0.0
    assert url_match("N/A", "n/a") == 1.0
