"""Run inside the CNTK 2.7 interpreter (Python 3.6): build a model from generated code, save it.

    python save_model.py CODE.py WEIGHTS.npy OUTPUT FORMAT

Imports ``CODE.py`` as a module, calls ``KitModel(WEIGHTS)`` and writes the
returned Function to ``OUTPUT`` with ``Function.save`` (FORMAT ``v2``) or
``cntk_py.save_as_legacy_model`` (``v1``).  The caller renames OUTPUT into
place, so a failure here leaves no model behind.  Python 3.6 syntax, stdlib +
numpy + cntk only; no mmconv imports.
"""

import contextlib
import importlib.util
import sys
import warnings

ERROR_PREFIX = "mmconv-cntk-save: "


def main(argv):
    if len(argv) != 5 or argv[4] not in ("v1", "v2"):
        sys.stderr.write(ERROR_PREFIX + "usage: save_model.py CODE.py WEIGHTS OUTPUT v1|v2\n")
        return 2
    code, weights, output, fmt = argv[1:]
    warnings.filterwarnings("ignore", category=UserWarning)
    import cntk

    with contextlib.suppress(Exception):  # already set, or a CPU-only build
        cntk.device.try_set_default_device(cntk.device.cpu())
    spec = importlib.util.spec_from_file_location("mmconv_generated_cntk_model", code)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        model = module.KitModel(weights)
    except Exception as exc:  # the weights are not the ones written for this code
        text = str(exc).strip().splitlines()
        detail = type(exc).__name__ + (": " + text[0] if text else "")
        sys.stderr.write(f"{ERROR_PREFIX}weights do not fit the code: {detail}\n")
        return 3
    if fmt == "v2":
        model.save(output)
    else:
        cntk.cntk_py.save_as_legacy_model(model, output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
