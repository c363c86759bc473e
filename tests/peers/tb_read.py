"""Reads TensorBoard event files with TensorBoard's own Python code, for Tunebox's tests.

Usage:
  tb_read.py runs <logdir>     every run under logdir (as TensorBoard names them), read with the
                               plugin EventMultiplexer/EventAccumulator (the server's compat
                               migrations applied, every point kept): scalars, metadata, hparams
  tb_read.py crc <hex> ...     crc32c and masked_crc32c of each hex string, with TensorBoard's code
  tb_read.py records <file>    the events of one file, read with TensorBoard's record reader

Prints one JSON document. Non-finite floats are written as the strings "NaN", "Infinity",
"-Infinity" so that the output is strict JSON.
"""

import json
import math
import sys

from google.protobuf import json_format
from tensorboard.backend.event_processing import event_file_loader
from tensorboard.backend.event_processing import plugin_event_multiplexer
from tensorboard.compat.tensorflow_stub import pywrap_tensorflow
from tensorboard.plugins.hparams import plugin_data_pb2
from tensorboard.util import tensor_util


def num(x):
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x


def read_runs(logdir):
    mux = plugin_event_multiplexer.EventMultiplexer(size_guidance={"tensors": 0})
    mux.AddRunsFromDirectory(logdir)
    mux.Reload()
    out = {}
    for run in sorted(mux.Runs()):
        acc = mux.GetAccumulator(run)
        tags = acc.Tags()["tensors"]
        scalars, data_class, plugin, hparams = {}, {}, {}, {}
        for tag in tags:
            meta = acc.SummaryMetadata(tag)
            data_class[tag] = int(meta.data_class)
            plugin[tag] = meta.plugin_data.plugin_name
            if meta.plugin_data.plugin_name == "scalars":
                scalars[tag] = [
                    [e.wall_time, e.step, num(tensor_util.make_ndarray(e.tensor_proto).item())]
                    for e in acc.Tensors(tag)
                ]
        try:
            contents = acc.PluginTagToContent("hparams")
        except KeyError:  # no hparams data in this run
            contents = {}
        for tag, content in contents.items():
            data = plugin_data_pb2.HParamsPluginData.FromString(content)
            hparams[tag] = json_format.MessageToDict(data)
        out[run] = {
            "scalars": scalars,
            "dataClass": data_class,
            "plugin": plugin,
            "hparams": hparams,
        }
    return {"runs": out}


def crc(hexes):
    out = []
    for h in hexes:
        data = bytes.fromhex(h)
        out.append({"crc": pywrap_tensorflow.crc32c(data), "masked": pywrap_tensorflow.masked_crc32c(data)})
    return out


def records(path):
    events = []
    for event in event_file_loader.LegacyEventFileLoader(path).Load():
        events.append(json_format.MessageToDict(event))
    return {"events": events}


def main():
    cmd = sys.argv[1]
    if cmd == "runs":
        result = read_runs(sys.argv[2])
    elif cmd == "crc":
        result = crc(sys.argv[2:])
    elif cmd == "records":
        result = records(sys.argv[2])
    else:
        raise SystemExit(f"unknown command {cmd!r}")
    json.dump(result, sys.stdout, allow_nan=False)


if __name__ == "__main__":
    main()
