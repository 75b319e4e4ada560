"""Tests for the MovieLens loaders: every layout, every validation error, and the drop accounting."""
# Long: every layout and every validation error needs its own small hand-written input files.

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.data.errors import DataValidationError
from pipeline.data.layouts import detect_layout
from pipeline.data.loaders import load_dataset

REAL_DATA = Path(__file__).resolve().parents[2] / "data" / "ml-latest-small"

RATINGS_CSV = """userId,movieId,rating,timestamp
1,1,4.0,964982703
1,2,3.5,964981247
2,3,5.0,964982224
2,4,0.5,964983815
3,5,2.0,964980000
"""
MOVIES_CSV = """movieId,title,genres
1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy
2,"American President, The (1995)",Comedy|Drama|Romance
3,Babylon 5,Sci-Fi
4,Death Note: Desu nôto (2006–2007),(no genres listed)
5,From Dusk Till Dawn 2: Texas Blood Money (1999) ,Crime|Horror
"""
TAGS_CSV = """userId,movieId,tag,timestamp
1,1,  Pixar ,1445714994
2,3,"Space, Opera",1445714996
2,4,NA,1445714997
"""

MOVIES_DAT_1M = """1::Toy Story (1995)::Animation|Children's|Comedy
2::Misérables, Les (1995)::Drama|Musical
3::"Great Performances" Cats (1998)::Musical
"""
RATINGS_DAT_1M = """1::1::5::978300760
1::2::3::978302109
2::3::4::978301968
"""
USERS_DAT_1M = """1::F::1::10::48067
2::M::56::16::70072
"""

MOVIES_DAT_10M = """1::Toy Story (1995)::Adventure|Animation|Children|Comedy|Fantasy
2::Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001)::Comedy|Romance
3::Star Wars: Episode IV - A New Hope (a.k.a. Star Wars) (1977)::(no genres listed)
"""
RATINGS_DAT_10M = """1::1::4.5::838985046
1::2::3.5::838983525
2::3::5::838983392
"""
TAGS_DAT_10M = """1::2::French::1188263867
2::3:: Classic ::1170560997
"""

U_DATA = "196\t1\t3\t881250949\n186\t2\t3\t891717742\n196\t3\t1\t878887116\n"
U_ITEM = (
    "1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
    "2|Kolya|24-Jan-1997||http://x|0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
    "3|Misérables, Les (1995)|01-Jan-1995||http://x|1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
)
U_GENRE = (
    "unknown|0\nAction|1\nAdventure|2\nAnimation|3\nChildren's|4\nComedy|5\nCrime|6\nDocumentary|7\n"
    "Drama|8\nFantasy|9\nFilm-Noir|10\nHorror|11\nMusical|12\nMystery|13\nRomance|14\nSci-Fi|15\n"
    "Thriller|16\nWar|17\nWestern|18\n\n"
)
U_USER = "186|39|F|executive|00000\n196|49|M|writer|55105\n"


def write(directory: Path, files: dict[str, str], encoding: str = "utf-8") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_bytes(text.encode(encoding))
    return directory


def csv_dataset(tmp_path: Path, **overrides: str) -> Path:
    files = {"ratings.csv": RATINGS_CSV, "movies.csv": MOVIES_CSV, "tags.csv": TAGS_CSV}
    files.update({name.replace("_", "."): text for name, text in overrides.items()})
    return write(tmp_path / "csv", files)


def dat_1m(tmp_path: Path) -> Path:
    files = {"ratings.dat": RATINGS_DAT_1M, "movies.dat": MOVIES_DAT_1M, "users.dat": USERS_DAT_1M}
    return write(tmp_path / "ml-1m", files, encoding="latin-1")


def ml_100k(tmp_path: Path, with_genre_file: bool = True) -> Path:
    files = {"u.data": U_DATA, "u.item": U_ITEM, "u.user": U_USER}
    if with_genre_file:
        files["u.genre"] = U_GENRE
    return write(tmp_path / "ml-100k", files, encoding="latin-1")


def rejected(directory: Path) -> DataValidationError:
    with pytest.raises(DataValidationError) as caught:
        load_dataset(directory)
    return caught.value


def assert_contract(dataset) -> None:
    """The dtypes, ordering and index the Dataset docstring promises."""
    ratings, items, tags = dataset.ratings, dataset.items, dataset.tags
    assert list(ratings.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert [str(t) for t in ratings.dtypes] == ["int64", "int64", "float32", "int64"]
    assert list(items.columns) == ["item_id", "title", "genres", "year"]
    assert [str(t) for t in items.dtypes] == ["int64", "str", "object", "int32"]
    assert all(isinstance(genres, tuple) for genres in items["genres"])
    assert list(tags.columns) == ["user_id", "item_id", "tag", "timestamp"]
    assert [str(t) for t in tags.dtypes] == ["int64", "int64", "str", "int64"]
    if dataset.users is not None:
        assert list(dataset.users.columns) == ["user_id", "age", "gender", "occupation", "zip"]
        assert [str(t) for t in dataset.users.dtypes] == ["int64", "int32", "str", "str", "str"]
    for frame in (ratings, items, tags):
        assert isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0
    assert ratings.equals(ratings.sort_values(["user_id", "timestamp", "item_id"], ignore_index=True))
    assert not ratings.duplicated(["user_id", "item_id"]).any()
    assert ratings["item_id"].isin(items["item_id"]).all()
    assert items["item_id"].is_unique
    assert dataset.files == sorted(dataset.files)


def test_csv_layout_with_tags(tmp_path: Path) -> None:
    directory = csv_dataset(tmp_path)
    dataset = load_dataset(directory)

    assert detect_layout(directory) == "csv"
    assert dataset.layout == "csv"
    assert_contract(dataset)
    assert (len(dataset.ratings), len(dataset.items), len(dataset.tags)) == (5, 5, 3)
    assert dataset.users is None
    assert dataset.dropped == {}
    assert dataset.files == [directory / "movies.csv", directory / "ratings.csv", directory / "tags.csv"]

    items = dataset.items.set_index("item_id")
    assert items.at[1, "genres"] == ("Adventure", "Animation", "Children", "Comedy", "Fantasy")
    assert items.at[4, "genres"] == ()
    assert items.at[2, "title"] == "American President, The (1995)"
    assert items.at[5, "title"] == "From Dusk Till Dawn 2: Texas Blood Money (1999)"
    assert items["year"].to_dict() == {1: 1995, 2: 1995, 3: 0, 4: 2006, 5: 1999}
    assert dataset.tags["tag"].tolist() == ["pixar", "space, opera", "na"]
    assert dataset.ratings["rating"].tolist() == [3.5, 4.0, 5.0, 0.5, 2.0]


def test_csv_layout_with_links(tmp_path: Path) -> None:
    links = "movieId,imdbId,tmdbId\n1,0114709,862\n2,0112346, \n99,0000001,1\n1,0000002,2\n"
    directory = csv_dataset(tmp_path, links_csv=links)
    dataset = load_dataset(directory)

    assert list(dataset.links.columns) == ["item_id", "imdb_id", "tmdb_id"]
    assert [str(t) for t in dataset.links.dtypes] == ["int64", "str", "str"]
    assert dataset.links.values.tolist() == [[1, "0114709", "862"], [2, "0112346", ""]]
    assert dataset.dropped == {"links: unknown item": 1, "links: duplicate item": 1}
    assert directory / "links.csv" in dataset.files


def test_csv_layout_without_tags(tmp_path: Path) -> None:
    directory = write(tmp_path / "csv", {"ratings.csv": RATINGS_CSV, "movies.csv": MOVIES_CSV})
    dataset = load_dataset(directory)

    assert_contract(dataset)
    assert dataset.tags.empty
    assert dataset.files == [directory / "movies.csv", directory / "ratings.csv"]


def test_dat_layout_latin1_with_demographics(tmp_path: Path) -> None:
    directory = dat_1m(tmp_path)
    dataset = load_dataset(directory)

    assert dataset.layout == "dat"
    assert_contract(dataset)
    assert (len(dataset.ratings), len(dataset.items), len(dataset.tags), len(dataset.links)) == (3, 3, 0, 0)
    assert list(dataset.links.columns) == ["item_id", "imdb_id", "tmdb_id"]
    items = dataset.items.set_index("item_id")
    assert items.at[2, "title"] == "Misérables, Les (1995)"
    assert items.at[3, "title"] == '"Great Performances" Cats (1998)'
    assert items.at[1, "genres"] == ("Animation", "Children", "Comedy")
    assert items["year"].tolist() == [1995, 1995, 1998]
    users = dataset.users.set_index("user_id")
    assert users.loc[1].tolist() == [1, "F", "10", "48067"]
    assert users.loc[2].tolist() == [56, "M", "16", "70072"]
    assert dataset.files == sorted(directory / name for name in ("movies.dat", "ratings.dat", "users.dat"))


def test_dat_layout_utf8_with_tags(tmp_path: Path) -> None:
    files = {"ratings.dat": RATINGS_DAT_10M, "movies.dat": MOVIES_DAT_10M, "tags.dat": TAGS_DAT_10M}
    directory = write(tmp_path / "ml-10m", files)
    dataset = load_dataset(directory)

    assert_contract(dataset)
    assert dataset.users is None
    items = dataset.items.set_index("item_id")
    assert items.at[2, "title"] == "Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001)"
    assert items.at[3, "genres"] == ()
    assert items.at[3, "year"] == 1977
    assert dataset.ratings["rating"].tolist() == [3.5, 4.5, 5.0]
    assert dataset.tags["tag"].tolist() == ["french", "classic"]


def test_100k_layout_with_demographics(tmp_path: Path) -> None:
    directory = ml_100k(tmp_path)
    dataset = load_dataset(directory)

    assert dataset.layout == "100k"
    assert_contract(dataset)
    assert (len(dataset.ratings), len(dataset.items), len(dataset.tags), len(dataset.links)) == (3, 3, 0, 0)
    assert list(dataset.links.columns) == ["item_id", "imdb_id", "tmdb_id"]
    items = dataset.items.set_index("item_id")
    assert items.at[1, "genres"] == ("Animation", "Children", "Comedy")
    assert items.at[3, "genres"] == ()
    assert items.at[3, "title"] == "Misérables, Les (1995)"
    assert items["year"].to_dict() == {1: 1995, 2: 1997, 3: 1995}
    users = dataset.users.set_index("user_id")
    assert users.loc[186].tolist() == [39, "F", "executive", "00000"]
    assert users.loc[196].tolist() == [49, "M", "writer", "55105"]
    assert [path.name for path in dataset.files] == ["u.data", "u.genre", "u.item", "u.user"]


def test_100k_layout_without_genre_file_uses_the_standard_order(tmp_path: Path) -> None:
    dataset = load_dataset(ml_100k(tmp_path, with_genre_file=False))

    assert dataset.items.set_index("item_id").at[1, "genres"] == ("Animation", "Children", "Comedy")


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {"ratings.csv": "userId,movieId,timestamp\n1,1,964982703\n"},
            "ratings.csv line 1: missing column(s) rating",
        ),
        (
            {"ratings.csv": RATINGS_CSV.replace("2,3,5.0,", "2,3,abc,")},
            "ratings.csv line 4: unparsable rating 'abc'",
        ),
        (
            {"ratings.csv": RATINGS_CSV.replace("2,3,5.0,964982224", "2,3,5.0,later")},
            "ratings.csv line 4: unparsable timestamp 'later'",
        ),
        (
            {"ratings.csv": RATINGS_CSV.replace("1,2,3.5,", "x1,2,3.5,")},
            "ratings.csv line 3: unparsable userId 'x1'",
        ),
        (
            {"ratings.csv": RATINGS_CSV.replace("2,4,0.5,", "2,4,7.0,")},
            "ratings.csv line 5: rating 7.0 out of range 0.5..5.0",
        ),
        (
            {"ratings.csv": RATINGS_CSV.replace("2,4,0.5,", "2,4,0.4,")},
            "ratings.csv line 5: rating 0.4 out of range",
        ),
        ({"ratings.csv": RATINGS_CSV.replace("2,4,0.5,", "2,4,NaN,")}, "ratings.csv line 5: rating is NaN"),
        (
            {"ratings.csv": RATINGS_CSV.replace("1,2,3.5,964981247", "1,2,3.5")},
            "ratings.csv line 3: missing timestamp",
        ),
        (
            {"ratings.csv": RATINGS_CSV.replace("2,3,5.0,964982224", "2,3,5.0,964982224,9")},
            "ratings.csv line 4: expected 4 fields, found 5",
        ),
        (
            {"ratings.csv": RATINGS_CSV.replace("1,2,3.5,", "\n\n1,2,9,")},
            "ratings.csv line 5: rating 9.0 out of range",
        ),
        (
            {"ratings.csv": "userId,movieId,rating,timestamp\n1,1,4.0,5,x\n1,2,3.0,6,y\n"},
            "ratings.csv line 2: more fields than the header has columns",
        ),
        ({"ratings.csv": "userId,movieId,rating,timestamp\n"}, "ratings.csv: no ratings"),
        ({"ratings.csv": ""}, "ratings.csv: the file is empty"),
        (
            {"movies.csv": MOVIES_CSV + "1,Toy Story again (1995),Comedy\n"},
            "movies.csv line 7: duplicate item id 1 (first on line 2)",
        ),
        (
            {"tags.csv": TAGS_CSV.replace("2,4,NA,", "2,four,NA,")},
            "tags.csv line 4: unparsable movieId 'four'",
        ),
    ],
)
def test_csv_validation_errors_name_file_and_line(tmp_path: Path, files: dict[str, str], expected: str) -> None:
    directory = csv_dataset(tmp_path)
    write(directory, files)

    error = rejected(directory)

    assert str(error).startswith(expected)
    name = next(iter(files))
    assert error.path == directory / name


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "ratings.dat",
            "1::1::5::978300760\n1::2::3::4::978302109\n",
            "ratings.dat line 2: expected 4 fields separated by '::', found 5",
        ),
        ("ratings.dat", "1::1::5::978300760\n\n1::2::978302109\n", "ratings.dat line 3: expected 4 fields"),
        (
            "ratings.dat",
            "1::1::5::978300760\n1::2::three::978302109\n",
            "ratings.dat line 2: unparsable rating 'three'",
        ),
        (
            "ratings.dat",
            "1::1::5::978300760\nuser::2::3::978302109\n",
            "ratings.dat line 2: unparsable user id 'user'",
        ),
        ("ratings.dat", "1::1::5::978300760\n1::2::nan::978302109\n", "ratings.dat line 2: rating is NaN"),
        ("ratings.dat", "1::1::6::978300760\n", "ratings.dat line 1: rating 6.0 out of range 0.5..5.0"),
        ("ratings.dat", "", "ratings.dat: no ratings"),
        (
            "movies.dat",
            MOVIES_DAT_1M + "2::Duplicate (1995)::Drama\n",
            "movies.dat line 4: duplicate item id 2 (first on line 2)",
        ),
        ("users.dat", USERS_DAT_1M + "3::F::25\n", "users.dat line 3: expected 5 fields"),
        (
            "users.dat",
            USERS_DAT_1M + "1::M::25::1::02134\n",
            "users.dat line 3: duplicate user id 1 (first on line 1)",
        ),
    ],
)
def test_dat_validation_errors_name_file_and_line(tmp_path: Path, name: str, text: str, expected: str) -> None:
    directory = dat_1m(tmp_path)
    write(directory, {name: text}, encoding="latin-1")

    error = rejected(directory)

    assert str(error).startswith(expected)
    assert error.path == directory / name


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("u.data", U_DATA + "1\t2\t3\n", "u.data line 4: expected 4 fields separated by '\\t', found 3"),
        ("u.data", U_DATA + "1\t2\t3.5.1\t881250949\n", "u.data line 4: unparsable rating '3.5.1'"),
        (
            "u.item",
            U_ITEM.replace("|0|0|0|1|1|1|", "|0|0|1|1|1|", 1),
            "u.item line 1: expected 24 fields separated by '|', found 23",
        ),
        (
            "u.item",
            U_ITEM.replace("|0|0|0|1|1|1|", "|0|0|0|2|1|1|", 1),
            "u.item line 1: genre flags must be 0 or 1",
        ),
        ("u.genre", U_GENRE.replace("Action|1", "Action|7"), "u.genre line 2: genre index 7, expected 1"),
        ("u.user", U_USER + "7|old|M|writer|55105\n", "u.user line 3: unparsable age 'old'"),
    ],
)
def test_100k_validation_errors_name_file_and_line(tmp_path: Path, name: str, text: str, expected: str) -> None:
    directory = ml_100k(tmp_path)
    write(directory, {name: text}, encoding="latin-1")

    error = rejected(directory)

    assert str(error).startswith(expected)
    assert error.path == directory / name


def test_unknown_layout_names_directory_and_expected_files(tmp_path: Path) -> None:
    directory = write(tmp_path / "not-movielens", {"ratings.csv": RATINGS_CSV, "readme.txt": "hi"})

    error = rejected(directory)

    assert error.path == directory and error.line is None
    assert str(error).startswith("not-movielens: no MovieLens layout")
    for name in ("ratings.csv", "movies.csv", "ratings.dat", "movies.dat", "u.data", "u.item"):
        assert name in str(error)


def test_directory_with_several_layouts_is_rejected(tmp_path: Path) -> None:
    directory = csv_dataset(tmp_path)
    write(directory, {"ratings.dat": RATINGS_DAT_1M, "movies.dat": MOVIES_DAT_1M})

    error = rejected(directory)

    assert "several layouts (csv, dat)" in str(error)


def test_csv_with_byte_order_mark_and_crlf_line_endings(tmp_path: Path) -> None:
    files = {"ratings.csv": "\ufeff" + RATINGS_CSV.replace("\n", "\r\n"), "movies.csv": MOVIES_CSV}
    directory = write(tmp_path / "windows", files)

    dataset = load_dataset(directory)

    assert len(dataset.ratings) == 5
    error = rejected(write(directory, {"ratings.csv": files["ratings.csv"].replace("2,4,0.5,", "2,4,5.5,")}))
    assert str(error).startswith("ratings.csv line 5: rating 5.5 out of range")


def test_missing_directory_is_a_validation_error(tmp_path: Path) -> None:
    error = rejected(tmp_path / "absent")

    assert "not a directory" in str(error)


def test_unusable_rows_are_dropped_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ratings = RATINGS_CSV + (
        "1,99,4.0,964982703\n"  # unknown item
        "1,1,1.0,964982800\n"  # later rating of (1, 1): replaces the 4.0
        "2,3,2.0,964982224\n"  # same (2, 3) and same time as the 5.0: later in the file wins
        "3,5,4.5,900000000\n"  # older rating of (3, 5): loses to the 2.0
    )
    tags = TAGS_CSV + "1,99,orphan,1445714998\n3,5,   ,1445714999\n"
    directory = csv_dataset(tmp_path, ratings_csv=ratings, tags_csv=tags)

    with caplog.at_level(logging.WARNING, logger="pipeline.data.loaders"):
        dataset = load_dataset(directory)

    assert_contract(dataset)
    assert dataset.dropped == {
        "ratings: unknown item": 1,
        "ratings: duplicate (user, item)": 3,
        "tags: unknown item": 1,
        "tags: empty tag": 1,
    }
    kept = dataset.ratings.set_index(["user_id", "item_id"])["rating"]
    assert kept.to_dict() == {(1, 2): 3.5, (1, 1): 1.0, (2, 3): 2.0, (2, 4): 0.5, (3, 5): 2.0}
    assert len(dataset.tags) == 3
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 4
    assert any("ratings: duplicate (user, item)" in message and "3" in message for message in warnings)


def test_progress_prints_one_line_per_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    load_dataset(csv_dataset(tmp_path), progress=True)

    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "reading ratings.csv …  5 rows",
        "reading movies.csv …  5 rows",
        "reading tags.csv …  3 rows",
    ]


def test_validation_error_reads_as_file_line_message_and_pickles() -> None:
    error = DataValidationError(Path("/data/ratings.csv"), 17, "rating 7.0 out of range 0.5..5.0")

    assert str(error) == "ratings.csv line 17: rating 7.0 out of range 0.5..5.0"
    assert isinstance(error, ValueError)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.path, copy.line, copy.message) == (error.path, error.line, error.message)
    assert str(DataValidationError(Path("ratings.dat"), None, "no ratings")) == "ratings.dat: no ratings"


def test_bundled_ml_latest_small(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="pipeline.data.loaders"):
        dataset = load_dataset(REAL_DATA)

    assert dataset.layout == "csv"
    assert_contract(dataset)
    assert len(dataset.ratings) == 100836
    assert len(dataset.items) == 9742
    assert dataset.ratings["user_id"].nunique() == 610
    assert len(dataset.tags) == 3683
    # The bundled ratings.csv ends with one extra row, "999,999999,5.0,1493846415", whose item is not in
    # movies.csv; it is the only invalid row.
    assert dataset.dropped == {"ratings: unknown item": 1}
    assert 999 not in set(dataset.ratings["user_id"])
    assert np.isin(dataset.ratings["rating"].unique(), np.arange(1, 11) / 2).all()
    assert (dataset.items["year"] == 0).sum() == 12
    assert (dataset.items["genres"] == ()).sum() == 34
