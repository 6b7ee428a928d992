"""llama.cpp's own OpenAI-compatible server, loading models the way moot does.

    python -m moot.models.llama_server --model FILE.gguf --host 127.0.0.1 --port 8000

takes `python -m llama_cpp.server`'s arguments; its models keep their weights out of
llama.cpp's extra buffer types (`moot.models.local.open_llama`: the AMX crash), so a GGUF can
be served to litellm (`openai/<name>` with `api_base`) on any CPU.
"""

from __future__ import annotations

from moot.models.local import protect_defaults


def main() -> None:
    protect_defaults()
    from llama_cpp.server.__main__ import main as serve

    serve()


if __name__ == "__main__":
    main()
