"""The file reader: CSV (streamed, bounded memory) and XLSX (the hardened sheet reader)."""

import io
import time
import tracemalloc
import zipfile
from datetime import UTC, datetime

import pytest
from openpyxl import Workbook

from apps.reconciliation.models import DataSource
from apps.reconciliation.readers import ReadError, Window, open_dataset, test_connection


@pytest.fixture
def media(tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


def stored(media, name: str, content: bytes) -> DataSource:
    (media / name).write_bytes(content)
    return DataSource(kind="file", file=name, file_name=name)


def read_all(source, columns, options=None, *, window=None, size=10_000):
    with open_dataset(source, "", options or {}, columns, window=window) as rows:
        return [row for batch in rows.batches(size) for row in batch]


# --------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------


def test_csv_with_a_bom_reads_columns_in_the_order_asked(media):
    source = stored(media, "orders.csv", "\ufeffid,name,amount\r\n1,Zoë,10.10\r\n2,,\r\n".encode())
    assert read_all(source, ["amount", "id"]) == [("10.10", "1"), ("", "2")]
    assert read_all(source, ["ID", "Name"]) == [("1", "Zoë"), ("2", "")]  # names by case too


def test_csv_delimiter_is_sniffed_among_comma_semicolon_and_tab(media):
    semicolon = stored(media, "semi.csv", b'id;name;note\n1;"Smith, J.";"a;b"\n2;Doe;\n')
    assert read_all(semicolon, ["id", "name", "note"]) == [
        ("1", "Smith, J.", "a;b"),
        ("2", "Doe", ""),
    ]
    tab = stored(media, "tab.tsv", b"id\tname\n1\tx,y\n")
    assert read_all(tab, ["name"]) == [("x,y",)]
    assert read_all(tab, ["id"], {"delimiter": "\t"}) == [("1",)]


def test_csv_quoted_line_breaks_and_blank_lines(media):
    source = stored(media, "multi.csv", b'\n\nid,text\n1,"two\nlines"\n\n2,plain\n')
    assert read_all(source, ["id", "text"]) == [("1", "two\nlines"), ("2", "plain")]


def test_csv_in_another_encoding_names_the_line_of_the_first_bad_byte(media):
    source = stored(media, "latin1.csv", "id,name\n1,ok\n2,Zoë\n".encode("latin-1"))
    with pytest.raises(ReadError) as caught:
        read_all(source, ["id"])
    assert caught.value.message == (
        "latin1.csv is not UTF-8 text: byte 0xeb on line 3 (save it as UTF-8)"
    )


def test_a_bad_byte_deep_in_a_large_csv_is_found_on_its_line(media):
    lines = [b"id,name\n"] + [b"%d,name %d\n" % (i, i) for i in range(1, 200_000)]
    lines[150_000] = b"150000,caf\xe9\n"
    source = stored(media, "deep.csv", b"".join(lines))
    with pytest.raises(ReadError) as caught:
        read_all(source, ["id"])
    assert caught.value.message == (
        "deep.csv is not UTF-8 text: byte 0xe9 on line 150001 (save it as UTF-8)"
    )


def test_utf16_is_refused_with_a_hint(media):
    source = stored(media, "wide.csv", "id,name\n1,x\n".encode("utf-16"))
    with pytest.raises(ReadError, match="^wide.csv is UTF-16 text; save it as UTF-8 CSV$"):
        read_all(source, ["id"])
    source = stored(media, "wide-nobom.csv", "id,name\n1,x\n".encode("utf-16-le"))
    with pytest.raises(ReadError, match="NUL characters: UTF-16 without a byte-order mark"):
        read_all(source, ["id"])


def test_a_ragged_row_names_its_line(media):
    source = stored(media, "ragged.csv", b"id,name,amount\n1,a,1\n2,b,2\n3,c\n4,d,4\n")
    with pytest.raises(ReadError) as caught:
        read_all(source, ["id"])
    assert caught.value.message == "line 4 of ragged.csv: 2 cells, but the header has 3"


def test_broken_quoting_names_its_line(media):
    source = stored(media, "quotes.csv", b'id,name\n1,"ok"\n2,"bad"x\n')
    with pytest.raises(ReadError, match=r"^line 3 of quotes.csv: "):
        read_all(source, ["id"])


def test_a_missing_key_column_names_it_and_the_columns_present(media):
    source = stored(media, "orders.csv", b"order_id,customer,total\n1,a,1\n")
    with pytest.raises(ReadError) as caught:
        read_all(source, ["order_id", "amount"])
    assert caught.value.message == (
        "column 'amount' is not in the header of orders.csv; its columns are: order_id, "
        "customer, total"
    )


def test_empty_file_missing_file_and_other_formats(media):
    with pytest.raises(ReadError, match="^empty.csv is empty; it needs a header line$"):
        read_all(stored(media, "empty.csv", b"\n\n"), ["id"])
    gone = DataSource(kind="file", file="gone.csv", file_name="gone.csv")
    with pytest.raises(ReadError, match="^the file gone.csv is missing from storage"):
        read_all(gone, ["id"])
    with pytest.raises(ReadError, match=r"^only CSV and XLSX files can be read, not \.xls$"):
        open_dataset(DataSource(kind="file", file="old.xls", file_name="old.xls"), "", {}, ["id"])
    with pytest.raises(ReadError, match="no file"):
        open_dataset(DataSource(kind="file"), "", {}, ["id"])
    with pytest.raises(ReadError, match="leave the dataset empty"):
        open_dataset(stored(media, "a.csv", b"id\n1\n"), "orders", {}, ["id"])


def test_a_line_longer_than_the_limit_is_refused(media, monkeypatch):
    from apps.reconciliation.readers import files

    monkeypatch.setattr(files, "MAX_LINE_CHARS", 100)
    source = stored(media, "long.csv", b"id,blob\n1," + b"x" * 500 + b"\n")
    with pytest.raises(
        ReadError, match=r"^line 2 of long.csv is longer than 100 characters; is it a CSV file\?$"
    ):
        read_all(source, ["id"])


def test_csv_window_and_count_hint(media):
    source = stored(
        media,
        "changes.csv",
        b"id,changed\n1,2024-05-01T08:00:00Z\n2,2024-05-02 10:00:00+02:00\n3,\n4,2024-05-03\n",
    )
    window = Window("changed", datetime(2024, 5, 1, 8, tzinfo=UTC), datetime(2024, 5, 3))
    assert read_all(source, ["id"], window=window) == [("1",), ("2",)]
    with open_dataset(source, "", {}, ["id"]) as dataset:
        assert dataset.count_hint() == 4
    bad = stored(media, "bad.csv", b"id,changed\n1,2024-05-01\n2,yesterday\n")
    with pytest.raises(ReadError) as caught:
        read_all(bad, ["id"], window=window)
    assert caught.value.message == (
        "line 3 of bad.csv: the window column 'changed' holds 'yesterday', not a date or an "
        "ISO date-time"
    )


def test_connection_test_of_a_file_names_its_columns(media):
    source = stored(media, "orders.csv", b"id;name\n1;x\n")
    assert test_connection(source) == "Read orders.csv (CSV): 2 columns: id, name"


def _vm_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/self/status")


def test_five_million_rows_stream_in_bounded_memory(media):
    started = time.monotonic()
    path = media / "big.csv"
    with open(path, "w") as out:
        out.write("id,name,amount\n")
        for start in range(0, 5_000_000, 100_000):
            out.write(
                "".join(
                    [
                        f"{i},name {i},{i % 1000}.{i % 100:02d}\n"
                        for i in range(start, start + 100_000)
                    ]
                )
            )
    source = DataSource(kind="file", file="big.csv", file_name="big.csv")
    assert path.stat().st_size > 130_000_000

    # The whole file, with the process's peak resident memory reset first (Linux: writing 5
    # to clear_refs sets the high-water mark to the current size).
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    before = _vm_kib("VmRSS")
    rows, total, last = 0, 0, None
    with open_dataset(source, "", {}, ["amount", "id"]) as dataset:
        for batch in dataset.batches(10_000):
            rows += len(batch)
            total += int(batch[-1][1])
            last = batch[-1]
    grown_mib = (_vm_kib("VmHWM") - before) / 1024
    assert rows == 5_000_000
    assert last == ("999.99", "4999999")
    assert total == sum(range(9_999, 5_000_000, 10_000))
    assert grown_mib < 50, f"resident memory grew by {grown_mib:.0f} MiB"

    # Python's own allocations, traced, over the first 500,000 rows (tracing all five
    # million would take half a minute).
    tracemalloc.start()
    try:
        with open_dataset(source, "", {}, ["amount", "id"]) as dataset:
            seen = 0
            for batch in dataset.batches(10_000):
                seen += len(batch)
                if seen >= 500_000:
                    break
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 1024 * 1024, f"tracemalloc peak {peak / 2**20:.0f} MiB"
    assert time.monotonic() - started < 30


# --------------------------------------------------------------------------------------
# XLSX
# --------------------------------------------------------------------------------------


def xlsx_bytes(rows) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_a_good_workbook_reads_cell_texts(media):
    source = stored(
        media,
        "orders.xlsx",
        xlsx_bytes(
            [
                [None],
                ["id", "customer", "amount", "placed", None],
                [1, "ACME", 10.5, datetime(2024, 5, 1)],
                [2, None, 20, datetime(2024, 5, 2, 10, 30)],
                [None, None, None, None],
                [3, "Initech"],
            ]
        ),
    )
    assert read_all(source, ["placed", "id", "amount", "customer"]) == [
        ("2024-05-01", "1", "10.5", "ACME"),
        ("2024-05-02T10:30:00", "2", "20", ""),
        ("", "3", "", "Initech"),
    ]
    assert test_connection(source) == (
        "Read orders.xlsx (XLSX): 4 columns: id, customer, amount, placed"
    )
    with pytest.raises(ReadError) as caught:
        read_all(source, ["total"])
    assert caught.value.message == (
        "column 'total' is not in the header (row 2) of orders.xlsx; its columns are: id, "
        "customer, amount, placed"
    )
    with open_dataset(source, "", {}, ["id"]) as dataset:
        assert dataset.count_hint() is None


def test_a_zip_bomb_is_refused_before_it_is_inflated(media):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", b" " * (8 * 1024 * 1024))
    source = stored(media, "bomb.xlsx", buffer.getvalue())
    with pytest.raises(ReadError) as caught:
        read_all(source, ["id"])
    message = caught.value.message
    assert message.startswith(
        'bomb.xlsx: The workbook is refused: its part "xl/worksheets/sheet1.xml"'
    )
    assert message.endswith("(a zip bomb).")


def test_a_file_without_a_known_suffix_is_recognised_by_its_first_bytes(media):
    workbook = stored(media, "export", xlsx_bytes([["id"], [7]]))
    assert read_all(workbook, ["id"]) == [("7",)]
    text = stored(media, "export2", b"id\n8\n")
    assert read_all(text, ["id"]) == [("8",)]
    broken = stored(media, "broken.xlsx", b"PK\x03\x04 not really a zip")
    with pytest.raises(ReadError, match="^broken.xlsx: The file is not an XLSX workbook"):
        read_all(broken, ["id"])
