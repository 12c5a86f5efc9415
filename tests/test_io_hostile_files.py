"""Model files that hang, explode, lie or leak; saves that lose work or pile up debris."""

import gc
import json
import os
import signal
import subprocess
import sys
import warnings
import zipfile

import numpy as np
import pytest

import flatnn
from flatnn import load, save
from flatnn.io import files
from flatnn.io import models as io


@pytest.fixture
def model():
    net = flatnn.Network((4, 3, 2), hidden="tanh")
    return net, net.init(0)


@pytest.fixture
def alarm():
    """Fail instead of hanging: SIGALRM after 10 s."""

    def ring(signum, frame):
        raise TimeoutError("blocked for 10 s")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _header(net, **overrides):
    doc = {"format": "flatnn-model", "version": 1, "network": net.to_dict(), "metadata": {}}
    doc.update(overrides)
    return json.dumps(doc)


def _npy(shape, dtype, body=b""):
    """The bytes of a .npy file declaring ``shape`` and ``dtype``, followed by ``body``."""
    import io as _io

    buf = _io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf,
        {
            "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
            "fortran_order": False,
            "shape": shape,
        },
    )
    return buf.getvalue() + body


def _write_members(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as z:
        for name, data in members.items():
            z.writestr(name, data)


def _header_npy(text):
    import io as _io

    buf = _io.BytesIO()
    np.save(buf, np.array(text))
    return buf.getvalue()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_load_refuses_a_fifo_instead_of_blocking(tmp_path, alarm):
    fifo = tmp_path / "model.npz"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        load(fifo)


def test_load_refuses_a_character_device(alarm):
    with pytest.raises(ValueError, match="not a regular file"):
        load("/dev/zero")


def test_params_shape_is_checked_before_its_data_is_read(tmp_path, model):
    # 2**28 float64 declared (2 GiB): refused from the .npy header, no allocation
    net, params = model
    path = tmp_path / "bomb.npz"
    _write_members(
        path,
        {"header.npy": _header_npy(_header(net)), "params.npy": _npy((2**28,), "<f8", b"\0" * 64)},
    )
    import tracemalloc

    tracemalloc.start()
    with pytest.raises(ValueError, match=rf"shape \(268435456,\).*needs \({net.n_params},\)"):
        load(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 16 << 20


def test_a_real_deflate_bomb_is_refused_before_inflating(tmp_path, model):
    # 64 MiB of zeros deflate to ~64 KB; the spec says 26 parameters
    net, params = model
    path = tmp_path / "bomb.npz"
    _write_members(
        path,
        {
            "header.npy": _header_npy(_header(net)),
            "params.npy": _npy((8 << 20,), "<f8", bytes(64 << 20)),
        },
        compression=zipfile.ZIP_DEFLATED,
    )
    assert path.stat().st_size < 1 << 20
    import tracemalloc

    tracemalloc.start()
    with pytest.raises(ValueError, match="shape"):
        load(path)
    assert tracemalloc.get_traced_memory()[1] < 16 << 20
    tracemalloc.stop()


def test_header_declaring_2_to_the_40_floats_is_a_value_error(tmp_path):
    # the spec and the .npy header agree on ~2**40 parameters; the file holds a few bytes
    net = flatnn.Network((2**20, 2**20))
    path = tmp_path / "huge.npz"
    _write_members(
        path,
        {
            "header.npy": _header_npy(_header(net)),
            "params.npy": _npy((net.n_params,), "<f8", b"\0" * 64),
        },
    )
    with pytest.raises(ValueError, match="corrupt or a decompression bomb"):
        load(path)


def test_oversized_header_is_refused_unread(tmp_path, model):
    net, params = model
    path = tmp_path / "m.npz"
    # a 0-d unicode header declaring 100 M characters (400 MB)
    _write_members(
        path,
        {
            "header.npy": _npy((), "<U100000000", b"{}"),
            "params.npy": _npy((net.n_params,), "<f8", params.tobytes()),
        },
    )
    with pytest.raises(ValueError, match="header declares 400000000 bytes"):
        load(path)


def test_header_nested_100000_levels_is_a_value_error(tmp_path, model):
    net, params = model
    path = tmp_path / "deep.npz"
    deep = "[" * 100000 + "]" * 100000
    text = _header(net)[:-1] + ', "deep": ' + deep + "}"
    import io as _io

    buf = _io.BytesIO()
    np.save(buf, params)
    _write_members(path, {"header.npy": _header_npy(text), "params.npy": buf.getvalue()})
    with pytest.raises(ValueError, match="nests too deeply"):
        load(path)


@pytest.mark.parametrize("version", [1.0, True, "1", [1], None])
def test_version_must_be_the_integer_1(tmp_path, model, version):
    net, params = model
    path = tmp_path / "m.npz"
    with open(path, "wb") as f:
        np.savez(f, params=params, header=np.array(_header(net, version=version)))
    with pytest.raises(ValueError, match="version .* is not supported"):
        load(path)


def test_big_endian_params_load_as_native_values(tmp_path, model):
    net, params = model
    path = tmp_path / "m.npz"
    with open(path, "wb") as f:
        np.savez(f, params=params.astype(">f8"), header=np.array(_header(net)))
    _, p, _ = load(path)
    assert p.dtype.isnative
    np.testing.assert_array_equal(p, params)


def test_truncated_zip_does_not_leak_the_file_handle(tmp_path, model):
    net, params = model
    path = tmp_path / "m.npz"
    save(path, net, params)
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 40):
        path.write_bytes(data[:cut])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(ValueError, match="m.npz"):
                load(path)
            gc.collect()
        assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


def test_circular_metadata_is_a_type_error_naming_the_key(tmp_path, model):
    net, params = model
    loop = {"a": 1}
    loop["self"] = loop
    with pytest.raises(TypeError, match="'history.self' contains itself"):
        save(tmp_path / "m.npz", net, params, history=loop)
    items = [1]
    items.append(items)
    with pytest.raises(TypeError, match=r"'runs\[1\]' contains itself"):
        save(tmp_path / "m.npz", net, params, runs=items)
    assert not os.listdir(tmp_path)


def test_deep_metadata_is_a_type_error_naming_the_key(tmp_path, model):
    net, params = model
    deep = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(TypeError, match=r"'deep\[0\]\[0\].*more than 64 levels"):
        save(tmp_path / "m.npz", net, params, deep=deep)
    # what may be saved can be loaded back
    ok = []
    for _ in range(io.MAX_METADATA_DEPTH - 1):
        ok = [ok]
    save(tmp_path / "m.npz", net, params, deep=ok)
    assert load(tmp_path / "m.npz")[2]["deep"] == ok


def test_shared_but_not_circular_metadata_is_fine(tmp_path, model):
    net, params = model
    shared = [1, 2]
    save(tmp_path / "m.npz", net, params, a=[shared, shared], b={"x": shared})
    assert load(tmp_path / "m.npz")[2] == {"a": [[1, 2], [1, 2]], "b": {"x": [1, 2]}}


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_saved_file_mode_follows_the_umask(tmp_path, model, umask):
    net, params = model
    old = os.umask(umask)
    try:
        path = save(tmp_path / "m.npz", net, params)
    finally:
        os.umask(old)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temporaries_of_killed_saves_are_cleaned(tmp_path, model):
    net, params = model
    host = files.host_tag()
    dead = tmp_path / f".flatnn-{host}-{_dead_pid()}-abcdef.npz.tmp"
    dead.write_bytes(b"x" * 1000)
    mine = tmp_path / f".flatnn-{host}-{os.getpid()}-abcdef.npz.tmp"  # a save in progress
    mine.write_bytes(b"x")
    legacy_old = tmp_path / ".flatnn-k2j3h4.npz.tmp"  # mkstemp's name, from older versions
    legacy_old.write_bytes(b"x")
    os.utime(legacy_old, (1e9, 1e9))
    legacy_new = tmp_path / ".flatnn-zzzzzz.npz.tmp"  # maybe another host, still writing
    legacy_new.write_bytes(b"x")
    other = tmp_path / "notes.npz.tmp"
    other.write_bytes(b"x")
    save(tmp_path / "m.npz", net, params)
    assert sorted(os.listdir(tmp_path)) == sorted(["m.npz", mine.name, legacy_new.name, other.name])


def test_save_killed_midway_leaves_debris_the_next_save_removes(tmp_path, model):
    net, params = model
    # a child that creates its temporary file and is killed before renaming it
    code = (
        f"import os, signal, flatnn.io.files as files; fd, tmp = files.create_temporary("
        f"{str(tmp_path)!r}); os.write(fd, b'x' * 100000); os.kill(os.getpid(), signal.SIGKILL)"
    )
    for _ in range(3):
        subprocess.run([sys.executable, "-c", code], check=False)
    assert len(os.listdir(tmp_path)) == 3
    save(tmp_path / "m.npz", net, params)
    assert os.listdir(tmp_path) == ["m.npz"]


def test_check_writable_finds_unwritable_paths_before_any_work(tmp_path):
    io.check_writable(tmp_path / "new.npz")  # fine, and leaves nothing
    assert not os.listdir(tmp_path)
    with pytest.raises(IsADirectoryError, match="is a directory"):
        io.check_writable(tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        io.check_writable(tmp_path / "file" / "m.npz")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        io.check_writable(tmp_path / "missing" / "m.npz")


def _cannot_create_in(folder):
    try:
        fd = os.open(os.path.join(folder, ".flatnn-probe"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except PermissionError:
        return True
    except OSError:
        return False
    os.close(fd)
    os.unlink(os.path.join(folder, ".flatnn-probe"))
    return False


def test_check_writable_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        folder = ro
        if not _cannot_create_in(ro):  # root writes anywhere: try a read-only mount
            folder = "/sys"
            if not os.path.isdir(folder) or not _cannot_create_in(folder):
                pytest.skip("no read-only folder available")
        with pytest.raises(PermissionError, match="not writable"):
            io.check_writable(os.path.join(folder, "m.npz"))
    finally:
        ro.chmod(0o755)


def test_save_into_a_directory_fails_before_writing(tmp_path, model):
    net, params = model
    (tmp_path / "d").mkdir()
    with pytest.raises(IsADirectoryError):
        save(tmp_path / "d", net, params)
    assert os.listdir(tmp_path) == ["d"]
    assert os.listdir(tmp_path / "d") == []


def test_a_member_named_twice_is_not_a_model(tmp_path, model):
    net, params = model
    path = tmp_path / "m.npz"
    good = tmp_path / "good.npz"
    save(good, net, params)
    with zipfile.ZipFile(good) as z:
        header, body = z.read("header.npy"), z.read("params.npy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("header.npy", header)
            z.writestr("params.npy", body)
            z.writestr("params.npy", body)
    with pytest.raises(ValueError, match="holds arrays"):
        load(path)


def test_save_refuses_to_replace_a_special_file(tmp_path, model):
    net, params = model
    with pytest.raises(ValueError, match="not a regular file"):
        save(os.devnull, net, params)


def test_what_save_writes_load_can_read_back(tmp_path, model):
    net, params = model
    limit_chars = io.MAX_HEADER_BYTES // 4
    with pytest.raises(ValueError, match="MAX_HEADER_BYTES"):
        save(tmp_path / "m.npz", net, params, notes="x" * limit_chars)
    assert not os.listdir(tmp_path)
    save(tmp_path / "m.npz", net, params, notes="x" * (limit_chars - 1000))
    assert len(load(tmp_path / "m.npz")[2]["notes"]) == limit_chars - 1000


def test_a_5000_digit_integer_in_the_header_is_an_error_naming_the_file(tmp_path, model):
    net, params = model
    path = tmp_path / "m.npz"
    text = (
        json.dumps(
            {"format": "flatnn-model", "version": 1, "network": net.to_dict(), "metadata": {}}
        )[:-1]
        + ', "n": '
        + "9" * 5000
        + "}"
    )
    with open(path, "wb") as f:
        np.savez(f, params=params, header=np.array(text))
    with pytest.raises(ValueError, match="m.npz.: the header is not valid JSON"):
        load(path)


def test_check_writable_empty_path_and_trailing_slash(tmp_path):
    with pytest.raises(FileNotFoundError, match="empty path"):
        io.check_writable("")
    with pytest.raises(IsADirectoryError, match="names a folder"):
        io.check_writable(str(tmp_path / "new") + "/")
    assert not os.listdir(tmp_path)
