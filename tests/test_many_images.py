"""Many images (srlab.batch.cluster, manifest, storage): the same bytes on a Dask cluster as
in one process, nothing lost when a worker is killed mid-batch, resume does only what is
missing, fsspec URLs, -r keeps the tree. Tiny images and span-fast x2 keep it quick; only
the tests that need worker processes start them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic_image
from PIL import Image

from srlab import batch
from srlab.batch import manifest as mf
from srlab.image.imageio import load_image

MODEL = {"model": "span-fast", "scale": 2, "backend": "torch"}


def make_images(folder: Path, n: int, size: int = 24) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"im{i:02d}.png"
        Image.fromarray(synthetic_image(i, size, size + i % 3)).save(p)
        paths.append(p)
    return paths


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def outputs(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*.png"))}


def assert_complete(inputs: list[Path], out: Path) -> None:
    for src in inputs:
        lr, sr = load_image(src), load_image(out / src.name)
        assert (sr.width, sr.height) == (lr.width * 2, lr.height * 2)
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[list[Path], Path]:
    """30 inputs and their outputs from the plain single-process path."""
    root = tmp_path_factory.mktemp("ref")
    inputs = make_images(root / "in", 30)
    result = batch.upscale_files([root / "in"], output=root / "ref", **MODEL)
    assert result.ok and len(result.written) == 30
    return inputs, root / "ref"


def test_manifest_rows_and_bad_input_recorded(tmp_path, reference):
    inputs, ref = reference
    (tmp_path / "in").mkdir()
    for p in inputs[:3]:
        (tmp_path / "in" / p.name).write_bytes(p.read_bytes())
    (tmp_path / "in" / "broken.png").write_bytes(b"not a png")
    result = batch.upscale_files([tmp_path / "in"], output=tmp_path / "out", resume=True,
                                 **MODEL)
    assert len(result.written) == 3 and len(result.failed) == 1 and result.exit_code == 1
    got = rows(tmp_path / "out" / mf.MANIFEST_NAME)
    bad = [r for r in got if r["status"] == "failed"]
    assert len(bad) == 1 and "broken.png" in bad[0]["error"]
    ok = {Path(r["input"]).name: r for r in got if r["status"] == "ok"}
    assert sorted(ok) == [p.name for p in inputs[:3]]
    r = ok[inputs[0].name]
    assert r["choice"] == "span-fast" and r["backend"] == "torch" and r["scale"] == 2
    assert r["out_size"] == [r["in_size"][0] * 2, r["in_size"][1] * 2]
    assert (tmp_path / "out" / inputs[0].name).read_bytes() == (ref / inputs[0].name).read_bytes()
    assert "3 written" in result.summary and "1 failed" in result.summary


def _counting(monkeypatch) -> dict[str, int]:
    import srlab.batch.cluster as cl

    calls = {"n": 0}
    real = cl.upscale_one

    def counting(*a, **k):
        calls["n"] += 1
        return real(*a, **k)

    monkeypatch.setattr(cl, "upscale_one", counting)
    return calls


def test_resume_after_interrupt_does_only_the_missing_files(tmp_path, reference, monkeypatch):
    inputs, ref = reference
    src = tmp_path / "in"
    src.mkdir()
    for p in inputs[:10]:
        (src / p.name).write_bytes(p.read_bytes())
    done: list[str] = []
    calls = _counting(monkeypatch)

    def ctrl_c_after_four(w):
        done.append(w.source.name)
        if len(done) == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        batch.upscale_files([src], output=tmp_path / "out", resume=True,
                            hooks=batch.BatchHooks(on_written=ctrl_c_after_four), **MODEL)
    assert calls["n"] == 4
    # a fifth output written but killed before its row: complete, so kept (and recorded);
    # a sixth torn (half the bytes, no row): redone; a recorded one damaged later: redone
    fifth, sixth = inputs[4].name, inputs[5].name
    (tmp_path / "out" / fifth).write_bytes((ref / fifth).read_bytes())
    (tmp_path / "out" / sixth).write_bytes((ref / sixth).read_bytes()[:300])
    damaged = tmp_path / "out" / done[0]
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"\0")
    calls["n"] = 0
    result = batch.upscale_files([src], output=tmp_path / "out", resume=True, **MODEL)
    assert calls["n"] == 10 - 4 - 1 + 1  # the missing five, the torn sixth among them, + damaged
    assert len(result.skipped) == 4 and result.ok
    assert outputs(tmp_path / "out") == {p.name: (ref / p.name).read_bytes() for p in inputs[:10]}
    last = mf.read_manifest(tmp_path / "out" / mf.MANIFEST_NAME)
    assert {Path(k).name for k in last} == {p.name for p in inputs[:10]}
    assert last[str(tmp_path / "out" / fifth)]["status"] == "verified"
    calls["n"] = 0  # a third run: nothing to do
    result = batch.upscale_files([src], output=tmp_path / "out", resume=True, **MODEL)
    assert calls["n"] == 0 and len(result.skipped) == 10


def test_resume_redoes_outputs_of_another_model(tmp_path, reference):
    inputs, _ = reference
    out = tmp_path / "out"
    batch.upscale_files([inputs[0]], output=out / inputs[0].name, resume=True, **MODEL)
    result = batch.upscale_files([inputs[0]], output=out / inputs[0].name, resume=True,
                                 model="nearest", scale=2)
    assert len(result.written) == 1 and not result.skipped


def test_recursive_keeps_the_tree_on_the_plain_path(tmp_path):
    make_images(tmp_path / "in" / "a" / "b", 2)
    make_images(tmp_path / "in", 1)
    result = batch.upscale_files([tmp_path / "in"], output=tmp_path / "out", recursive=True,
                                 model="nearest", scale=2)
    assert result.ok
    assert sorted(outputs(tmp_path / "out")) == ["a/b/im00.png", "a/b/im01.png", "im00.png"]
    again = batch.upscale_files([tmp_path / "in"], output=tmp_path / "in" / "big",
                                recursive=True, model="nearest", scale=2)
    assert again.ok and len(again.written) == 3  # the outputs inside the input are not inputs
    again = batch.upscale_files([tmp_path / "in"], output=tmp_path / "in" / "big",
                                recursive=True, model="nearest", scale=2)
    assert again.ok and len(again.written) == 3
    flat = batch.upscale_files([tmp_path / "in"], output=tmp_path / "flat", model="nearest",
                               scale=2)
    assert len(flat.written) == 1  # without -r, sub-folders are not entered (as before)


def test_memory_urls_in_and_out_with_tree(tmp_path, reference):
    fsspec = pytest.importorskip("fsspec")
    inputs, ref = reference
    fs = fsspec.filesystem("memory")
    for i, p in enumerate(inputs[:3]):
        fs.pipe(f"/h52in/{'sub/' if i == 2 else ''}{p.name}", p.read_bytes())
    fs.pipe("/h52in/notes.txt", b"not an image: ignored")
    result = batch.upscale_files(["memory://h52in"], output="memory://h52out", recursive=True,
                                 manifest=tmp_path / "m.jsonl", **MODEL)
    assert result.ok and len(result.written) == 3
    assert fs.cat(f"/h52out/sub/{inputs[2].name}") == (ref / inputs[2].name).read_bytes()
    assert fs.cat(f"/h52out/{inputs[0].name}") == (ref / inputs[0].name).read_bytes()
    assert not [f for f in fs.find("/h52out") if f.endswith(".tmp")]
    again = batch.upscale_files(["memory://h52in"], output="memory://h52out", recursive=True,
                                manifest=tmp_path / "m.jsonl", resume=True, **MODEL)
    assert len(again.skipped) == 3 and not again.written
    fs.pipe("/h52bad/broken.png", b"not a png")
    bad = batch.upscale_files(["memory://h52bad"], output="memory://h52out2",
                              manifest=tmp_path / "m2.jsonl", **MODEL)
    (src, message), = bad.failed
    assert message.startswith("memory://") and "h52bad/broken.png: not an image" in message
    assert "srlab-in" not in message


def test_without_cluster_dask_is_never_imported(tmp_path, reference):
    inputs, _ = reference
    code = ("import sys; from srlab import batch; "
            f"r = batch.upscale_files([{str(inputs[0])!r}], output={str(tmp_path / 'o')!r}, "
            "model='nearest', scale=2, resume=True); "
            "assert r.ok and r.written, r; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.stdout.strip() == "[]"


def test_bad_cluster_address_is_a_usage_error(capsys, tmp_path, reference):
    pytest.importorskip("distributed")
    from srlab import cli

    inputs, _ = reference
    code = cli.main(["upscale", str(inputs[0]), "-o", str(tmp_path / "x.png"), "-m", "nearest",
                     "-s", "2", "--cluster", "local:zero"])
    err = capsys.readouterr().err
    assert code == 2 and "local:N" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists()


def test_threaded_cluster_same_bytes_and_ctrl_c_then_resume(tmp_path, reference):
    """In-process workers (threads): cheap, and memory:// would work here too."""
    distributed = pytest.importorskip("distributed")
    inputs, ref = reference
    seen: list[str] = []

    def stop_after_five(w):
        seen.append(w.source.name)
        if len(seen) == 5:
            raise KeyboardInterrupt

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as lc, distributed.Client(lc) as c:
        with pytest.raises(KeyboardInterrupt):
            batch.upscale_files([inputs[0].parent], output=tmp_path / "out", cluster=c,
                                hooks=batch.BatchHooks(on_written=stop_after_five), **MODEL)
        result = batch.upscale_files([inputs[0].parent], output=tmp_path / "out", cluster=c,
                                     resume=True, **MODEL)
    assert result.ok and len(result.skipped) >= 5
    assert len(result.skipped) + len(result.written) == 30
    assert outputs(tmp_path / "out") == outputs(ref)
    got = rows(tmp_path / "out" / mf.MANIFEST_NAME)
    assert len({r["output"] for r in got}) == 30 == len(got)  # none twice, none missing
    assert_complete(inputs, tmp_path / "out")


def test_cluster_reports_what_auto_read_and_why_as_the_plain_path(tmp_path):
    """on_choice gets the same read and reason from a worker (as text) as in-process: the
    CLI's auto line once crashed on the cluster path."""
    distributed = pytest.importorskip("distributed")
    src = tmp_path / "in"
    src.mkdir()
    Image.open(make_images(tmp_path / "png", 1, size=32)[0]).save(src / "a.jpg", quality=60)
    heard: dict[str, list[tuple[str, str, str]]] = {"plain": [], "cluster": []}

    def hooks(key: str) -> batch.BatchHooks:
        return batch.BatchHooks(on_choice=lambda p, cond, name: heard[key].append(
            (cond.describe(), cond.reason, name)))

    opts = {"model": "auto", "scale": 2, "backend": "torch"}
    batch.upscale_files([src], output=tmp_path / "plain", hooks=hooks("plain"), **opts)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as lc, distributed.Client(lc) as c:
        batch.upscale_files([src], output=tmp_path / "cl", cluster=c, hooks=hooks("cluster"),
                            **opts)
    assert heard["cluster"] == heard["plain"] and len(heard["plain"]) == 1
    read, reason, _ = heard["plain"][0]
    assert "JPEG file, quality ~60" in read and reason

def test_local2_cli_matches_single_process_bytes(capsys, tmp_path, reference):
    pytest.importorskip("distributed")
    from srlab import cli

    inputs, ref = reference
    src = tmp_path / "in"
    src.mkdir()
    for p in inputs[:6]:
        (src / p.name).write_bytes(p.read_bytes())
    code = cli.main(["upscale", str(src), "-o", str(tmp_path / "out"), "-m", "span-fast", "-s",
                     "2", "--backend", "torch", "--cluster", "local:2", "-q"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "6 written" in err and "2 workers" in err
    assert outputs(tmp_path / "out") == {p.name: (ref / p.name).read_bytes() for p in inputs[:6]}


def test_killed_worker_loses_nothing(tmp_path, reference):
    """Kill one worker process (SIGKILL) in the middle of a 30-file batch: every output ends
    complete and identical to the single-process run, once in the manifest, no temp file."""
    distributed = pytest.importorskip("distributed")
    inputs, ref = reference
    killed: list[int] = []
    seen: list[str] = []

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=50) as lc, \
            distributed.Client(lc) as client:
        pids = client.run(os.getpid)

        def kill_one_after_three(w):
            seen.append(w.source.name)
            if len(seen) == 3:  # tasks are queued and running on both workers now
                addr, pid = next(iter(pids.items()))
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

        result = batch.upscale_files([inputs[0].parent], output=tmp_path / "out",
                                     cluster=client, **MODEL,
                                     hooks=batch.BatchHooks(on_written=kill_one_after_three))
        after = client.run(os.getpid)
    assert killed and killed[0] not in after.values()  # the nanny replaced the dead worker
    assert result.ok and len(result.written) == 30, result.failed
    got = rows(tmp_path / "out" / mf.MANIFEST_NAME)
    assert len(got) == 30 and len({r["output"] for r in got}) == 30
    assert outputs(tmp_path / "out") == outputs(ref)
    assert_complete(inputs, tmp_path / "out")
    assert np.all([r["status"] == "ok" for r in got])


def test_cli_resume_and_summary(capsys, tmp_path, reference):
    from srlab import cli

    inputs, ref = reference
    argv = ["upscale", str(inputs[0]), str(inputs[1]), "-o", str(tmp_path / "out"), "-m",
            "span-fast", "-s", "2", "--backend", "torch", "--resume", "-q"]
    assert cli.main(argv) == 0
    assert "2 written, 0 already complete, 0 failed" in capsys.readouterr().err
    assert cli.main(argv) == 0
    assert "0 written, 2 already complete, 0 failed" in capsys.readouterr().err
    assert len(rows(tmp_path / "out" / mf.MANIFEST_NAME)) == 2
    assert outputs(tmp_path / "out") == {p.name: (ref / p.name).read_bytes() for p in inputs[:2]}


# --- chunks: several files per task, faults and resume still per file ----------------------


def test_chunk_with_a_bad_file_records_it_and_completes_the_others(tmp_path, reference):
    distributed = pytest.importorskip("distributed")
    inputs, ref = reference
    src = tmp_path / "in"
    src.mkdir()
    for p in inputs[:5]:
        (src / p.name).write_bytes(p.read_bytes())
    (src / "im02b.png").write_bytes(b"not a png")  # sorted between im02 and im03
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as lc, distributed.Client(lc) as c:
        result = batch.upscale_files([src], output=tmp_path / "out", cluster=c, chunk=3,
                                     **MODEL)
    assert len(result.written) == 5 and len(result.failed) == 1
    (bad, message), = result.failed
    assert bad.name == "im02b.png" and "im02b.png" in message
    got = rows(tmp_path / "out" / mf.MANIFEST_NAME)
    assert len(got) == 6 == len({r["output"] for r in got})
    assert outputs(tmp_path / "out") == {p.name: (ref / p.name).read_bytes() for p in inputs[:5]}


def test_retried_chunk_verifies_what_its_dead_attempt_finished(tmp_path, reference,
                                                              monkeypatch):
    """A chunk run again (its worker died) upscales only the files not yet complete; outputs
    from before the batch began are not trusted, they are redone."""
    import time

    from srlab.batch import UpscaleOptions
    from srlab.batch.cluster import TaskSpec, upscale_chunk

    inputs, ref = reference
    calls = _counting(monkeypatch)
    out = tmp_path / "out"
    out.mkdir()
    pairs = [(str(p), str(out / p.name)) for p in inputs[:4]]
    spec = TaskSpec(UpscaleOptions(**MODEL), "span-fast", since=time.time() - 1)
    first = upscale_chunk(pairs[:3], spec)  # the dead attempt got through three files...
    assert calls["n"] == 3 and all(r["status"] == "ok" for r in first)
    torn = out / inputs[1].name
    torn.write_bytes(torn.read_bytes()[:200])  # ...the second of them torn, say
    calls["n"] = 0
    again = upscale_chunk(pairs, spec)  # the retry: the torn one and the fourth are done
    assert calls["n"] == 2
    assert [r["status"] for r in again] == ["ok"] * 4
    assert [bool(r.get("note")) for r in again] == [True, False, True, False]
    assert again[0]["sha256"] == first[0]["sha256"] and again[0]["in_size"] == first[0]["in_size"]
    assert outputs(out) == {p.name: (ref / p.name).read_bytes() for p in inputs[:4]}
    calls["n"] = 0  # a new batch (began after these outputs were written) redoes them all
    upscale_chunk(pairs, TaskSpec(UpscaleOptions(**MODEL), "span-fast", since=time.time() + 1))
    assert calls["n"] == 4


def test_resume_with_chunks_does_only_the_missing_files(tmp_path, reference, monkeypatch):
    """A finished chunked batch with four outputs lost and one damaged: the resume, in
    chunks, upscales exactly those five (counted) and verifies the other seven."""
    distributed = pytest.importorskip("distributed")
    inputs, ref = reference
    src = tmp_path / "in"
    src.mkdir()
    for p in inputs[:12]:
        (src / p.name).write_bytes(p.read_bytes())
    calls = _counting(monkeypatch)
    out = tmp_path / "out"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as lc, distributed.Client(lc) as c:
        first = batch.upscale_files([src], output=out, cluster=c, chunk=3, resume=True,
                                    **MODEL)
        assert first.ok and calls["n"] == 12
        for p in inputs[2:6]:
            (out / p.name).unlink()
        damaged = out / inputs[9].name
        damaged.write_bytes(damaged.read_bytes()[:-1] + b"\0")
        calls["n"] = 0
        result = batch.upscale_files([src], output=out, cluster=c, chunk=3, resume=True,
                                     **MODEL)
    assert result.ok and calls["n"] == 5
    assert len(result.skipped) == 7 and len(result.written) == 5
    assert outputs(out) == {p.name: (ref / p.name).read_bytes() for p in inputs[:12]}
    last = mf.read_manifest(out / mf.MANIFEST_NAME)
    assert len(last) == 12 and all(r["status"] == "ok" for r in last.values())


def test_negative_chunk_is_a_usage_error(tmp_path, reference):
    inputs, _ = reference
    with pytest.raises(batch.UsageError, match="--chunk"):
        batch.upscale_files([inputs[0]], output=tmp_path / "o", chunk=-1, resume=True,
                            **MODEL)
