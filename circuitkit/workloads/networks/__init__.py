"""Neural networks on tiled crossbars: accuracy and energy of whole networks, SPICE-checked tile by tile.

* :mod:`.spec` -- the network description (TOML): layers, tiles, mapping, device, periphery;
  :func:`load_network` checks it and locates every error (file, line, key path).
* :mod:`.tiles` -- layers cut into tiles, built as crossbar circuits (``build_circuit``), read in
  batches with IR drop and the cells' own I-V; the ngspice check of a tile.
* :mod:`.engine` -- :func:`run_network`: DAC, TIA and ADC in the loop, digital partial sums, bias and
  activations; accuracy against the data's labels and the float network, per-layer errors, clipping,
  energy and latency.
* :mod:`.report` -- JSON, Parquet and PNG output; :mod:`.sweep` -- sweeps of network parameters.

Python use::

    from circuitkit.workloads.networks import load_network, run_network
    net = load_network("examples/digits/network.toml", {"periphery.adc.bits": "4"})
    result = run_network(net, data, labels, verify_tiles=1)
    print(result.summary())
"""
_EXPORTS = {"NetworkResult": "engine", "float_forward": "engine", "run_network": "engine",
            "Network": "spec", "NetworkError": "spec", "load_network": "spec", "parse_overrides": "spec",
            "write_results": "report", "load_array": "report", "run_sweep": "sweep"}
__all__ = sorted(_EXPORTS)


def __getattr__(name):      # lazy: the CLI registers `infer` without importing numpy/scipy/the engine
    if name in _EXPORTS:
        import importlib
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(name)
