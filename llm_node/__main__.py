"""`python -m llm_node`: run one LLM node from the command line."""

from __future__ import annotations

import argparse


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the node's command-line options (the names mirror the PRS_LLM_* settings)."""
    parser = argparse.ArgumentParser(prog="python -m llm_node", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=11434)
    parser.add_argument("--model-path", default="", help="a GGUF file; empty: the bundled gemma3 270M")
    parser.add_argument("--model-name", default="gemma3-270m", help="the name clients ask for")
    parser.add_argument("--data-dir", default="data", help="where the bundled model is assembled")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads; 0: all cores")
    parser.add_argument("--ctx", type=int, default=2048, help="context window in tokens")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the node until interrupted."""
    arguments = parse_arguments(argv)
    # Imported here so that `--help` answers without loading llama.cpp.
    from llm_node.server import serve

    serve(
        host=arguments.host,
        port=arguments.port,
        model_path=arguments.model_path or None,
        model_name=arguments.model_name,
        data_dir=arguments.data_dir,
        threads=arguments.threads,
        n_ctx=arguments.ctx,
    )


if __name__ == "__main__":
    main()
