"""``hotline ami``: listen to the Asterisk Manager Interface until SIGTERM / SIGINT."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from hotline.settings import get_settings

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "ami", help="nghe sự kiện cuộc gọi từ Asterisk (AMI) / listen to Asterisk call events (AMI)",
        description="Kết nối AMI theo HOTLINE_AMI_HOST/PORT/USERNAME/SECRET, ghi mọi sự kiện cuộc gọi, "
                    "tự kết nối lại và đồng bộ lại. / Connects to AMI with HOTLINE_AMI_HOST/PORT/USERNAME/"
                    "SECRET, records every call event, reconnects and resyncs by itself.",
    )
    p.add_argument("--host", help="override HOTLINE_AMI_HOST")
    p.add_argument("--port", type=int, help="override HOTLINE_AMI_PORT")
    p.add_argument("--source", "--name", dest="source",
                   help="tên tổng đài này / this PBX's name: the source of its calls, and what centres and lines "
                        "name to send their calls here (default HOTLINE_AMI_NAME, else ami:HOST:PORT)")
    p.set_defaults(handler=cmd_ami)


def cmd_ami(args: argparse.Namespace) -> int:
    from hotline.centres.service import PBX_NAME
    from hotline.cli import CliError
    from hotline.ingest.providers.asterisk.listener import AmiListener

    settings = get_settings()
    missing = [name for name, value in (("HOTLINE_AMI_USERNAME", settings.ami_username),
                                        ("HOTLINE_AMI_SECRET", settings.ami_secret)) if not value]
    if missing:
        raise CliError(
            f"chưa đặt {' và '.join(missing)}: hãy đặt tài khoản AMI (trong manager.conf của Asterisk) "
            f"vào biến môi trường hoặc tệp .env / {' and '.join(missing)} not set: put the AMI user from "
            "Asterisk's manager.conf in the environment or the .env file"
        )
    host = args.host or settings.ami_host
    port = args.port or settings.ami_port
    if not 0 < port < 65536:
        raise CliError(f"cổng AMI không hợp lệ / invalid AMI port: {port} (Asterisk uses 5038)")
    source = (args.source or settings.ami_name or "").strip() or None
    if source is not None and not PBX_NAME.match(source):
        raise CliError(f"tên tổng đài không hợp lệ / invalid PBX name: {source[:70]!r} (letters, digits and . _ - : @, "
                       "at most 64)")
    listener = AmiListener(host, port, settings.ami_username, settings.ami_secret, source=source)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("ami.signal", extra={"signal": signal.Signals(signum).name})
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        listener.run_forever(stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("ami.exit", extra={"source": listener.source, **{k: v for k, v in listener.counters().items()
                                                               if isinstance(v, int)}})
    return 0
