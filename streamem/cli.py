"""Command line: ``streamem run | check-config | replay | inspect``.

The only module that exits the process. Exit codes:

* 0: success
* 1: runtime failure (a sink, the state store, unexpected errors)
* 2: bad usage or bad config (the message names the key and the fix)
* 3: a checkpoint or state that cannot be used
* 4: the input cannot be read
* 130: interrupted twice (forced)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from streamem import __version__
from streamem.errors import ConfigError, SourceError, StateError, StreamemError

if TYPE_CHECKING:
    from streamem.config import Config

__all__ = ["main"]

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG, EXIT_STATE, EXIT_SOURCE, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
logger = logging.getLogger("streamem")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="streamem",
        description="Streaming anomaly detection for sensor and log streams.",
        epilog="exit codes: 0 ok, 1 failure, 2 bad config/usage, 3 bad state, 4 input error",
    )
    p.add_argument("--version", action="version", version=f"streamem {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the detector daemon",
                         description="Consume events, flag anomalies, checkpoint, export metrics.")
    run.add_argument("-c", "--config", default="config.example.yaml",
                     help="YAML config (default: %(default)s)")
    run.add_argument("--log-format", choices=["text", "json"], help="override logging.format")
    run.add_argument("--log-level", help="override logging.level")

    chk = sub.add_parser("check-config", help="validate a config without connecting anywhere")
    chk.add_argument("config", help="YAML config file")
    chk.add_argument("--print", action="store_true", help="print the effective config (masked)")
    chk.add_argument("--keys", type=int, metavar="N",
                     help="with model.scope key: estimate the memory for N keys "
                          "(default: model.max_keys_in_memory)")
    chk.add_argument("--key-chars", type=int, default=16, metavar="C",
                     help="the longest key's length, for the estimate (default 16)")

    rep = sub.add_parser("replay", help="backtest: run the pipeline over a file",
                         description="Run the daemon's pipeline over a JSON-lines or CSV file, "
                         "print a summary and, with labels, detection metrics.")
    rep.add_argument("file", help="JSON-lines or CSV file")
    rep.add_argument("-c", "--config", default="config.example.yaml", help="YAML config")
    rep.add_argument("--labels", help="0/1 label field; enables precision/recall/F1 etc.")
    rep.add_argument("--report", metavar="DIR", help="write PNG plots and index.html here")
    rep.add_argument("--deliver", action="store_true",
                     help="also send anomalies to the configured sinks")
    rep.add_argument("--feedback", metavar="FILE",
                     help="JSON lines of {id, verdict}: replay operators' verdicts as their "
                     "anomalies are flagged; the report shows precision before and after")
    rep.add_argument("--json", action="store_true", help="print the summary as JSON")
    rep.add_argument("--no-progress", action="store_true", help="no progress bar")

    ins = sub.add_parser("inspect", help="show the newest valid checkpoint")
    ins.add_argument("state_dir", nargs="?", help="checkpoint directory (checkpoint.dir)")
    ins.add_argument("-c", "--config", help="read the store named by this config instead")
    ins.add_argument("--key", default="global", help="state key: global or p<N> (partition)")
    ins.add_argument("--entity", metavar="K",
                     help="with model.scope key (needs --config): the model of entity key K "
                          "in state --key")
    ins.add_argument("--json", action="store_true", help="print JSON")

    fb = sub.add_parser("feedback", help="tell a running daemon an alert was right or wrong",
                        description="POST a verdict to the daemon's /api/v1/feedback; the "
                        "token is read from the environment variable named by --token-env.")
    fb.add_argument("id", help="the anomaly record's id")
    fb.add_argument("--verdict", required=True, choices=["false_positive", "true_positive"])
    fb.add_argument("--note", default="", help="free text kept with the verdict")
    fb.add_argument("-c", "--config", default="config.example.yaml",
                    help="config of the daemon (for metrics.host and metrics.port)")
    fb.add_argument("--url", help="the daemon's address instead, e.g. http://127.0.0.1:9108")
    fb.add_argument("--token-env", default="STREAMEM_UI_TOKEN",
                    help="environment variable holding ui.token (default: %(default)s)")
    return p


def _plain(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    return x


def snapshot_summary(snap: Any) -> dict[str, Any]:
    """JSON-ready view of a snapshot: positions, counters, model (original units), threshold."""
    from streamem.scoring.detector import Detector

    det = Detector.from_state(snap.detector)
    out: dict[str, Any] = {
        "key": snap.key, "sequence": snap.sequence, "created_at": snap.created_at,
        "schema_version": snap.schema_version,
        "position": {str(k): v for k, v in sorted(snap.positions.items())},
        "counters": dict(snap.counters), "ready": det.ready_,
        "events_total": det.n_events_,
    }
    if det.ready_:
        m, sc = det.model_, det.scaler_
        means = sc.inverse_transform(m.means_)
        cov = m.covariances_
        if cov.ndim == 3:
            cov = cov * np.outer(sc.scale_, sc.scale_)[None]
        else:
            cov = cov * (sc.scale_**2)[None]
        t = det.threshold_model_
        out["model"] = {"n_components": m.n_components_, "weights": m.weights_,
                        "means": means, "covariances": cov,
                        "covariance_type": m.covariance_type, "n_seen": m.n_seen_}
        out["threshold"] = {"surprise": t.threshold_, "tail_probability": 10 ** -t.threshold_,
                            "log_likelihood": det.log_likelihood_threshold(),
                            "tail_shape": t.health()["tail_shape"],
                            "tail_scale": t.health()["tail_scale"]}
    return dict(_plain(out))


def _existing_state_dir(path: str) -> str:
    """``path`` if it is a directory; inspecting reads, it never creates the directory."""
    from pathlib import Path

    if not Path(path).exists():
        raise StateError(f"no valid checkpoint: the state directory {path} does not exist; "
                         "give the checkpoint.dir of a daemon that has run")
    if not Path(path).is_dir():
        raise StateError(f"no valid checkpoint: {path} is not a directory; give the "
                         "checkpoint.dir of a daemon that has run")
    return path


def _cmd_inspect(args: argparse.Namespace) -> int:
    from streamem.state.base import CheckpointStore

    if args.entity is not None:
        return _inspect_entity(args)

    store: CheckpointStore
    if args.config:
        from streamem.config import load_config
        from streamem.runtime.build import make_store

        cfg = load_config(args.config)
        if cfg.checkpoint.store == "directory":
            _existing_state_dir(cfg.checkpoint.dir)
        store = make_store(cfg)
    elif args.state_dir:
        from streamem.state.directory import DirectoryCheckpointStore

        store = DirectoryCheckpointStore(_existing_state_dir(args.state_dir))
    else:
        raise ConfigError("state_dir", "give the checkpoint directory or --config FILE")
    from streamem.runtime.checkpoint import detector_from_snapshot

    with store:  # what `run` would restore: snapshots it could not use are skipped
        snap = store.load_latest(args.key, check=detector_from_snapshot)
        keys = store.keys()
    if snap is None:
        raise StateError(f"no valid checkpoint for key {args.key!r} (keys present: "
                         f"{', '.join(keys) or 'none'}); run the daemon first")
    info = snapshot_summary(snap)
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True))
    else:
        print(f"state {info['key']}: checkpoint #{info['sequence']}, position {info['position']}")
        print(f"counters: {info['counters']}")
        if "model" in info:
            print(f"model: {info['model']['n_components']} components, weights "
                  f"{np.round(info['model']['weights'], 3).tolist()}")
            print(f"threshold: tail probability < {info['threshold']['tail_probability']:.3g}")
    return EXIT_OK


def _inspect_entity(args: argparse.Namespace) -> int:
    from streamem.config import load_config
    from streamem.runtime.keyed_inspect import entity_summary

    if not args.config:
        raise ConfigError("--entity", "needs --config FILE (the key store is named by it)")
    cfg = load_config(args.config)
    if cfg.model.scope != "key":
        raise ConfigError("--entity", f"model.scope is {cfg.model.scope!r}; entity keys have "
                          "models of their own only with model.scope key")
    info = entity_summary(cfg, args.key, args.entity)
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True))
        return EXIT_OK
    print(f"key {info['key']!r} in state {info['lane']}: {info['events']} events, "
          f"{info['own_anomalies']} anomalies, {info['state']} "
          f"(own model after {info['key_prior_events']:g} events)")
    for j, w in enumerate(info["weights"]):
        parts = ", ".join(f"{n}={m:.4g}±{s:.3g}" for n, m, s in
                          zip(info["features"], info["means"][j], info["stds"][j], strict=True))
        print(f"component {j}: weight {w:.3f}: {parts}")
    return EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    from streamem.config import dump_config, load_config

    cfg = load_config(args.config)
    print(f"{args.config}: OK ({len(cfg.fields.features)} features, source {cfg.source.type}, "
          f"{len(cfg.sinks)} sinks, state in {cfg.checkpoint.dir})")
    if cfg.model.scope == "key":
        print(_key_memory_line(cfg, args.keys, args.key_chars))
    if args.print:
        print(json.dumps(dump_config(cfg), indent=2))
    return EXIT_OK


def _key_memory_line(cfg: Config, n_keys: int | None, key_chars: int) -> str:
    """check-config's memory estimate of a keyed model (one lane)."""
    from streamem.scoring.key_table import key_memory

    m = cfg.model
    if n_keys is not None and n_keys < 0:
        raise ConfigError("--keys", f"{n_keys} is negative; give the number of keys expected")
    want = m.max_keys_in_memory if n_keys is None else n_keys
    k = 2 if m.n_components == "auto" else int(m.n_components)  # as the keyed lane builds it
    d = len(cfg.fields.features)
    total = key_memory(d, k, want, capacity=m.max_keys_in_memory, key_chars=key_chars)
    held = min(want, m.max_keys_in_memory)
    return (f"memory: about {total / 2**20:.1f} MiB for {held:,} keys in memory "
            f"({total / max(held, 1):.0f} B per key at d={d}, K={k}, keys up to {key_chars} "
            f"characters), per lane; keys beyond model.max_keys_in_memory="
            f"{m.max_keys_in_memory:,} wait in the key store")


def _cmd_run(args: argparse.Namespace) -> int:
    import dataclasses

    from streamem.config import load_config
    from streamem.logs import setup_logging
    from streamem.runtime.daemon import Daemon

    cfg = load_config(args.config)
    lc = cfg.logging
    if args.log_format or args.log_level:
        level = (args.log_level or lc.level).upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError("--log-level", f"{args.log_level!r} is not a level; use DEBUG, "
                              "INFO, WARNING or ERROR")
        lc = dataclasses.replace(lc, format=args.log_format or lc.format, level=level)  # type: ignore[arg-type]
    setup_logging(lc.level, lc.format, cfg.secrets())
    logger.info("streamem %s starting: source %s, %d features, state in %s", __version__,
                cfg.source.type, len(cfg.fields.features), cfg.checkpoint.dir)
    daemon = Daemon(cfg)
    daemon.run()
    return EXIT_OK


def _cmd_replay(args: argparse.Namespace) -> int:
    from streamem.config import load_config
    from streamem.logs import setup_logging
    from streamem.runtime.replay import replay

    cfg = load_config(args.config)
    setup_logging("WARNING", "text", cfg.secrets())
    res = replay(args.file, cfg, labels=args.labels, report=args.report,
                 deliver=args.deliver, progress=not args.no_progress, feedback=args.feedback)
    summary = {"file": args.file, **res.totals, "seconds": round(res.seconds, 3),
               "events_per_second": round(res.totals["events"] / max(res.seconds, 1e-9)),
               "metrics": res.metrics}
    if args.report:
        summary["report"] = f"{args.report}/index.html"
    if args.json:
        print(json.dumps(_plain(summary), indent=2))
    else:
        t = res.totals
        print(f"{args.file}: {t['events']} events, {t['anomalous']} anomalies, "
              f"{t['rejected']} rejected, {summary['events_per_second']:,} events/s")
        for k, v in res.metrics.items():
            print(f"  {k:32s} {v:.4g}")
        if args.report:
            print(f"report: {args.report}/index.html")
    return EXIT_OK


def _cmd_feedback(args: argparse.Namespace) -> int:
    from streamem.config import load_config
    from streamem.ui.client import send_feedback

    token = os.environ.get(args.token_env)
    if not token:
        raise ConfigError(args.token_env, f"environment variable {args.token_env} is not set; "
                          f"export {args.token_env}=<the daemon's ui.token>")
    url = args.url
    if url is None:
        m = load_config(args.config).metrics
        host = f"[{m.host}]" if ":" in m.host else m.host
        url = f"http://{host}:{m.port}"
    out = send_feedback(url, token, args.id, args.verdict, args.note)
    print(json.dumps(out["stored"]))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``streamem`` command; returns the exit code."""
    args = _parser().parse_args(argv)
    handlers = {"run": _cmd_run, "check-config": _cmd_check, "replay": _cmd_replay,
                "inspect": _cmd_inspect, "feedback": _cmd_feedback}
    from streamem.logs import escape_controls  # a message may quote input: one line each

    try:
        return handlers[args.command](args)
    except ConfigError as exc:
        print(f"streamem: config error: {escape_controls(str(exc))}", file=sys.stderr)
        return EXIT_CONFIG
    except StateError as exc:
        print(f"streamem: state error: {escape_controls(str(exc))}", file=sys.stderr)
        return EXIT_STATE
    except SourceError as exc:
        print(f"streamem: input error: {escape_controls(str(exc))}", file=sys.stderr)
        return EXIT_SOURCE
    except StreamemError as exc:
        print(f"streamem: error: {escape_controls(str(exc))}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("streamem: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def run() -> None:
    """Console-script wrapper: exit with :func:`main`'s code."""
    sys.exit(main())
