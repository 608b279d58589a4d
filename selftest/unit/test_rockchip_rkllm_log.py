"""hil.rockchip.rkllm_log against the exact log text of rockchip.md §1-§2, the demo stand-ins'
transcripts for several runtimes, a serial capture, and ``hil parse rkllm-log``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hil.rockchip import rkllm_log
from hil.rockchip.text import clean_lines
from hil.twin import models, standins
from selftest.unit import test_standins as standin

SEP = "-" * 86

# --- the reference texts (rockchip.md §1.2, §1.3), verbatim -----------------------------------

V101 = "rkllm-runtime version: 1.0.1, rknpu driver version: 0.9.6, platform: RK3588\n"
V101_QUERY_ERROR = "rkllm-runtime version: 1.0.1\n\nQuery platform error!\n"

V11X = """rkllm init start
W rkllm: Warning: Your rknpu driver version is too low, please upgrade to 0.9.7.

I rkllm: rkllm-runtime version: 1.1.4, rknpu driver version: 0.9.8, platform: RK3588

rkllm init success
"""

TABLE_11X = """--------------------------------------------------------------------------------------
 Stage         Total Time (ms)  Tokens    Time per Token (ms)      Tokens per Second
--------------------------------------------------------------------------------------
 Prefill       307.22           11        27.93                    35.81
 Generate      2103.63          15        142.91                   7.00
--------------------------------------------------------------------------------------
"""

TABLE_120 = """I rkllm: --------------------------------------------------------------------------------------
I rkllm:  Stage         Total Time (ms)  Tokens    Time per Token (ms)      Tokens per Second
I rkllm: --------------------------------------------------------------------------------------
I rkllm:  Init          1430.74          /         /                        /
I rkllm:  Prefill       98.41            10        9.84                     101.61
I rkllm:  Generate      641.28           9         71.25                    14.03
I rkllm: --------------------------------------------------------------------------------------
I rkllm:  Memory Usage (GB)
I rkllm:  2.04
I rkllm: --------------------------------------------------------------------------------------
"""

V12X = """W rkllm: Warning: Your rknpu driver version is too low, please upgrade to 0.9.7
I rkllm: rkllm-runtime version: 1.2.3, rknpu driver version: 0.9.8, platform: RK3576
I rkllm: loading rkllm model from /opt/asr/models/decoder/decoder_qwen3.w4a16_g128.rk3576.rkllm
I rkllm: rkllm-toolkit version: 1.2.3, max_context_limit: 4096, npu_core_num: 2, target_platform: RK3576, model_dtype: W4A16_G128
I rkllm: Enabled cpus: [4, 5, 6, 7]
I rkllm: Enabled cpus num: 4
I rkllm: Using mrope
I RKNN: [03:26:58.100] RKNN LLM Runtime Information, rknn llm lib version: 2.3.3b0 (c824afd6c@2025-08-25T09:55:02)
I RKNN: [03:26:58.100] RKNN Driver Information, version: 0.9.8
I rkllm: reset chat template:
I rkllm: system_prompt: <|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n
I rkllm: prompt_prefix: <|im_start|>user\\n
I rkllm: prompt_postfix: <|im_end|>\\n<|im_start|>assistant\\n
W rkllm: Calling rkllm_set_chat_template will disable the internal automatic chat template parsing, including enable_thinking. Make sure your custom prompt is complete and valid.
"""

TABLE_121 = """I rkllm: --------------------------------------------------------------------------------------
I rkllm:  Model init time (ms)  5482.81
I rkllm: --------------------------------------------------------------------------------------
I rkllm:  Stage         Total Time (ms)  Tokens    Time per Token (ms)      Tokens per Second
I rkllm: --------------------------------------------------------------------------------------
I rkllm:  Prefill       4143.53          223       18.58                    53.82
I rkllm:  Generate      20911.60         116       180.27                   5.55
I rkllm: --------------------------------------------------------------------------------------
I rkllm:  Peak Memory Usage (GB)
I rkllm:  4.55
I rkllm: --------------------------------------------------------------------------------------
"""

TABLE_130_MB = """I rkllm:  Prefill       196.36           4         49.09                    20.37
I rkllm:  Generate      125.08           1         125.08                   7.99
I rkllm:  Peak Memory Usage (MB)
I rkllm:  1673.56
"""

DSHANPI_121 = ("I rkllm: rkllm-runtime version: 1.2.1, rknpu driver version: 0.9.8, platform: RK3576\n"
               "I rkllm: rkllm-toolkit version: 1.2.1, max_context_limit: 4096, npu_core_num: 2, "
               "target_platform: RK3576, model_dtype: W4A16\n")


def table_rows(table: str) -> str:
    """The table of a later run: from the Stage header down (no init block)."""
    return table[table.index("I rkllm:  Stage") - len("I rkllm: " + SEP + "\n"):]


def test_every_key_is_there_and_absent_values_are_none():
    log = rkllm_log.parse("")
    assert tuple(log) == rkllm_log.KEYS
    assert log == {**dict.fromkeys(rkllm_log.KEYS), "runs": [], "warnings": [], "errors": []}


def test_1_0_1_version_line_without_prefix():
    log = rkllm_log.parse(V101)
    assert (log["runtime_version"], log["driver_version"], log["platform"]) == ("1.0.1", "0.9.6", "RK3588")
    assert log["errors"] == []


def test_1_0_1_query_platform_error():
    log = rkllm_log.parse(V101_QUERY_ERROR)
    assert log["runtime_version"] == "1.0.1"
    assert log["driver_version"] is None and log["platform"] is None
    assert log["errors"] == ["Query platform error!"]


def test_1_1_x_init_and_unprefixed_table():
    log = rkllm_log.parse(V11X + TABLE_11X)
    assert (log["runtime_version"], log["driver_version"], log["platform"]) == ("1.1.4", "0.9.8", "RK3588")
    assert log["warnings"] == ["W rkllm: Warning: Your rknpu driver version is too low, please upgrade to 0.9.7."]
    assert log["toolkit_version"] is None and log["init_ms"] is None
    assert log["runs"] == [{
        "prefill_ms": 307.22, "prefill_tokens": 11, "prefill_tokens_per_s": 35.81,
        "generate_ms": 2103.63, "generate_tokens": 15, "generate_tokens_per_s": 7.00,
        "peak_memory_mib": None,
    }]
    assert log["errors"] == []


def test_1_2_0_init_row_and_memory_in_gb():
    log = rkllm_log.parse(TABLE_120)
    assert log["init_ms"] == 1430.74
    assert log["runs"] == [{
        "prefill_ms": 98.41, "prefill_tokens": 10, "prefill_tokens_per_s": 101.61,
        "generate_ms": 641.28, "generate_tokens": 9, "generate_tokens_per_s": 14.03,
        "peak_memory_mib": 2088.96,  # 2.04 GiB
    }]


def test_1_2_x_init_lines():
    log = rkllm_log.parse(V12X)
    assert log["runtime_version"] == "1.2.3" and log["driver_version"] == "0.9.8" and log["platform"] == "RK3576"
    assert (log["toolkit_version"], log["max_context_limit"], log["npu_core_num"], log["target_platform"],
            log["model_dtype"]) == ("1.2.3", 4096, 2, "RK3576", "W4A16_G128")
    assert log["warnings"] == [
        "W rkllm: Warning: Your rknpu driver version is too low, please upgrade to 0.9.7",
        "W rkllm: Calling rkllm_set_chat_template will disable the internal automatic chat template parsing, "
        "including enable_thinking. Make sure your custom prompt is complete and valid.",
    ]
    assert log["errors"] == [] and log["runs"] == []


def test_driver_version_from_the_rknn_line_when_the_runtime_line_lacks_it():
    log = rkllm_log.parse("I RKNN: [03:26:58.100] RKNN Driver Information, version: 0.9.8\n")
    assert log["driver_version"] == "0.9.8" and log["runtime_version"] is None


def test_1_2_1_dshanpi_log_with_two_runs():
    """The init block comes with the first table only; a later run prints from the Stage header."""
    log = rkllm_log.parse(DSHANPI_121 + "robot: answer\n" + TABLE_121 + "\nuser: robot: more\n" + table_rows(TABLE_121))
    assert log["init_ms"] == 5482.81
    assert log["model_dtype"] == "W4A16"
    assert len(log["runs"]) == 2
    for run in log["runs"]:
        assert run == {
            "prefill_ms": 4143.53, "prefill_tokens": 223, "prefill_tokens_per_s": 53.82,
            "generate_ms": 20911.60, "generate_tokens": 116, "generate_tokens_per_s": 5.55,
            "peak_memory_mib": 4659.2,  # 4.55 GiB
        }


def test_1_3_0_memory_in_mb_is_taken_as_mib():
    log = rkllm_log.parse(TABLE_130_MB)
    assert log["runs"] == [{
        "prefill_ms": 196.36, "prefill_tokens": 4, "prefill_tokens_per_s": 20.37,
        "generate_ms": 125.08, "generate_tokens": 1, "generate_tokens_per_s": 7.99,
        "peak_memory_mib": 1673.56,
    }]


def test_tables_pasted_without_their_header_are_separate_runs():
    log = rkllm_log.parse(TABLE_130_MB + TABLE_130_MB.replace("196.36", "200.00"))
    assert [run["prefill_ms"] for run in log["runs"]] == [196.36, 200.00]
    assert [run["peak_memory_mib"] for run in log["runs"]] == [1673.56, 1673.56]


def test_clean_lines():
    """Serial line ends (CR CR LF), a redrawn line (lone CR), colour codes and trailing pad."""
    text = "one\r\r\ntwo\r\nthree\rfour  \n\x1b[1;31mred\x1b[0m\ttab\x07"
    assert clean_lines(text) == ["one", "two", "three", "four", "red\ttab"]


def test_trailing_pad_of_the_printf_formats_is_ignored():
    padded = "\n".join(line + " " * 12 for line in TABLE_121.splitlines()) + "\n"
    assert rkllm_log.parse(padded) == rkllm_log.parse(TABLE_121)


def test_serial_capture_parses_as_the_plain_log():
    """CRLF (and CR CR LF), colour codes, a prompt with the echoed command, the streamed answer
    and an RKNN line interleaved: the same facts as the clean log."""
    plain = DSHANPI_121 + "rkllm init success\n\nuser: robot: The capital of France is Paris.\n" + TABLE_121
    prompt = "\x1b[?2004h\x1b]0;root@rk3576: ~\x07\x1b[01;32mroot@rk3576\x1b[00m:\x1b[01;34m~\x1b[00m# "
    serial = prompt + "RKLLM_LOG_LEVEL=1 ./llm /userdata/qwen.rkllm 128 512 2>&1 | grep -v 'E rkllm: '\r\n\x1b[?2004l\r"
    lines = plain.splitlines()
    lines.insert(3, "I RKNN: [08:04:38.229] RKNN Runtime Information, librknnrt version: 2.3.2 (429f97ae6b@2025-04-09T09:09:27)")
    lines[1] = "\x1b[32m" + lines[1] + "\x1b[0m"
    serial += "\r\r\n".join(lines[:5]) + "\r\n" + "\r\n".join(lines[5:]) + "\r\n" + prompt
    log = rkllm_log.parse(serial)
    assert log == rkllm_log.parse(plain)
    assert log["runtime_version"] == "1.2.1" and log["init_ms"] == 5482.81
    assert log["runs"][0]["generate_tokens"] == 116 and log["errors"] == []


def test_an_error_streamed_after_robot():
    log = rkllm_log.parse("user: robot: E rkllm: prompt gather than max context (prompt: 223 tokens, "
                          "max context: 200)\n\\run error\n")
    assert log["errors"] == ["E rkllm: prompt gather than max context (prompt: 223 tokens, max context: 200)",
                             "\\run error"]


# rockchip.md §2, one row each: what the parser must report as errors (and warnings)
ERRORS = [
    ("W rkllm: Warning: Your rknpu driver version is too low, please upgrade to 0.9.7\n"
     "E rkllm: matmul(w8a8) run failed\nE rkllm: matmul(w8a8) run failed\n",
     ["E rkllm: matmul(w8a8) run failed"] * 2,
     ["W rkllm: Warning: Your rknpu driver version is too low, please upgrade to 0.9.7"]),
    ("E RKNN: [10:01:02.003] failed to allocate handle, ret: -1, errno: 14, errstr: Bad address\n"
     "E RKNN: [10:01:02.003] failed to malloc npu memory, size: 4059037696, flags: 0x2\n"
     "E RKNN: [10:01:02.004] load model file error!\nrknn_init fail! ret=-1\nrkllm init success\n",
     ["E RKNN: [10:01:02.003] failed to allocate handle, ret: -1, errno: 14, errstr: Bad address",
      "E RKNN: [10:01:02.003] failed to malloc npu memory, size: 4059037696, flags: 0x2",
      "E RKNN: [10:01:02.004] load model file error!", "rknn_init fail! ret=-1"], []),
    ("E RKNN: [10:01:02.003] invalid rknn llm model magic\nE RKNN: [10:01:02.003] load model file error!\n",
     ["E RKNN: [10:01:02.003] invalid rknn llm model magic", "E RKNN: [10:01:02.003] load model file error!"], []),
    (": invalid magic characters '...'\n: error: failed to load model 'X.rkllm'\nrkllm init failed\n",
     ["invalid magic characters '...'", "error: failed to load model 'X.rkllm'", "rkllm init failed"], []),
    ("E rkllm: invalid rkllm model!\n", ["E rkllm: invalid rkllm model!"], []),
    ("E rkllm: max_context[16384] must be less than the model's max_context_limit[4096]\n",
     ["E rkllm: max_context[16384] must be less than the model's max_context_limit[4096]"], []),
    ("error: prompt gather than max context (prompt: 1299 tokens, max context: 1020)\n",
     ["error: prompt gather than max context (prompt: 1299 tokens, max context: 1020)"], []),
    ("Platform error: must be either RK3588, RK3576, RV1126B, or RK3562.\nYour platform is lite.\nrkllm init failed\n",
     ["Platform error: must be either RK3588, RK3576, RV1126B, or RK3562.", "Your platform is lite.",
      "rkllm init failed"], []),
    ("E rkllm: Mismatch between enabled CPUs mask and expected count. Please check the configuration.\n",
     ["E rkllm: Mismatch between enabled CPUs mask and expected count. Please check the configuration."], []),
    ("E RKNN: [10:01:02.003] failed to open rknpu module, need to insmod rknpu dirver!\n"
     "E RKNN: [10:01:02.003] failed to open rknn device!\nE RKNN: [10:01:02.003] Device is not available\n"
     "Get device properties failed\nrkllm init failed\n",
     ["E RKNN: [10:01:02.003] failed to open rknpu module, need to insmod rknpu dirver!",
      "E RKNN: [10:01:02.003] failed to open rknn device!", "E RKNN: [10:01:02.003] Device is not available",
      "Get device properties failed", "rkllm init failed"], []),
    ("E RKNN: [10:01:02.003] 6, 1\nE RKNN: [10:01:02.003] Invalid RKNN model version 6\n"
     "E RKNN: [10:01:02.003] rknn_init, load model failed!\nrknn_init fail! ret=-1\n",
     ["E RKNN: [10:01:02.003] 6, 1", "E RKNN: [10:01:02.003] Invalid RKNN model version 6",
      "E RKNN: [10:01:02.003] rknn_init, load model failed!", "rknn_init fail! ret=-1"], []),
    ("===the core num is 3===\nE RKNN: [08:04:38.229] rknn_set_core_mask: unavailable core mask found for current "
     "platform! max core mask = 3\n",
     ["E RKNN: [08:04:38.229] rknn_set_core_mask: unavailable core mask found for current platform! max core mask = 3"],
     []),
    ("main: ImgEnc Model loaded in  4921.70 ms\nSegmentation fault\n", ["Segmentation fault"], []),
    ("main: ImgEnc Model loaded in  4921.70 ms\n段错误 (核心已转储)\n", ["段错误 (核心已转储)"], []),
    ("robot: \\run error\n", ["\\run error"], []),
    ("run error\n", ["run error"], []),
]


@pytest.mark.parametrize("text, errors, warnings", ERRORS, ids=range(len(ERRORS)))
def test_errors_and_warnings_of_the_reference(text, errors, warnings):
    log = rkllm_log.parse(text)
    assert log["errors"] == errors
    assert log["warnings"] == warnings


def test_answer_text_and_a_quoted_marker_are_no_errors():
    log = rkllm_log.parse("robot: A run error is rare.\nroot@rk3576:~# grep -c 'E rkllm: ' run.log\n")
    assert log["errors"] == [] and log["warnings"] == []


# --- real captures from public threads (each quoted as pasted there; the thread is named) -------

# av1d/rk3588_npu_llm_server#2: runtime 1.0.1 given a 1.0.0 model; nothing has a level prefix.
AV1D_2 = """rkllm init start
rkllm-runtime version: 1.0.1
Warning: The model version is too old, please use the latest toolkit to reconvert the model!
The model target_platform does not match!
RKLLM: failed to load model '/home/orangepi/qwen-chat-1_8B.rkllm'!!!
RKLLM init failed!
"""

# Pelochus/ezrknn-llm#5: the same 1.0.1 refusal, pasted in backticks, under a wrapper that then
# says "init success!".
EZRKNN_LLM_5 = """`rkllm llama2-chat-7b-hf.rkllm
RKLLM starting, please wait...
rkllm-runtime version: 1.0.1
Warning: The model version is too old, please use the latest toolkit to reconvert the model!
The model target_platform does not match!
RKLLM: failed to load model 'llama2-chat-7b-hf.rkllm'!!!
RKLLM init success!
`"""

# airockchip/rknn-llm#271: runtime and toolkit 1.2.1b1; its model line has no model_dtype.
RKNN_LLM_271 = """$ ./llm_demo_2_cpu ../Qwen2.5-1.5B-Instruct_W8A8_RK3588.rkllm 1024 2048
rkllm init start
I rkllm: rkllm-runtime version: 1.2.1b1, rknpu driver version: 0.9.8, platform: RK3588
I rkllm: loading rkllm model from ../Qwen2.5-1.5B-Instruct_W8A8_RK3588.rkllm
I rkllm: rkllm-toolkit version: 1.2.1b1, max_context_limit: 4096, npu_core_num: 3, target_platform: RK3588
I rkllm: Enabled cpus: [4, 6]
I rkllm: Enabled cpus num: 2
E rkllm: The number of enabled CPUs must be greater than or equal to the number of NPU cores.
rkllm init failed
"""

# darkautism/llmserver-rs#3: a Rust server's download progress bar, then the runtime's first line
# on the same line; a model converted by toolkit 1.2.0 under runtime 1.2.1b1; the server's own
# failure after init is no runtime error.
LLMSERVER_RS_3 = (
    "# ./llmserver-rs thanhtantran/Vi-Qwen2-1.5B-RAG-rk3588-1.2.0\n"
    "model.rkllm [00:01:30] [" + "█" * 137 + "] 1.90 GiB/1.90 GiB 24.24 MiB/s (0s)"
    "I rkllm: rkllm-runtime version: 1.2.1b1, rknpu driver version: 0.9.8, platform: RK3588\n"
    "I rkllm: loading rkllm model from /root/.cache/huggingface/hub/models--thanhtantran--Vi-Qwen2-1.5B-RAG-rk3588-1.2.0/"
    "snapshots/ec983ceddf156addf3607a46b60ee491cfb0bfab/model.rkllm\n"
    "I rkllm: rkllm-toolkit version: 1.2.0, max_context_limit: 4096, npu_core_num: 3, target_platform: RK3588\n"
    "I rkllm: Enabled cpus: [4, 5, 6, 7]\n"
    "I rkllm: Enabled cpus num: 4\n"
    "I rkllm: system_prompt: <|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n\n"
    "I rkllm: prompt_prefix: <|im_start|>user\\n\n"
    "I rkllm: prompt_postfix: <|im_end|>\\n<|im_start|>assistant\\n\n"
    "tokenizer_config.json [00:00:01] [" + "█" * 137 + "] 5.21 KiB/5.21 KiB - (0s)Failed to initialize LLM model "
    "thanhtantran/Vi-Qwen2-1.5B-RAG-rk3588-1.2.0: missing field `legacy` at line 208 column 1\n"
    "\n"
    "thread 'main' panicked at src/main.rs:99:25:\n"
    "Failed to initialize\n")

# NotPunchnox/rkllama#60: a Flask server's logging (werkzeug) around runtime 1.2.1's lines.
RKLLAMA_60 = """2025-08-02 13:51:02,391 - werkzeug - INFO - 127.0.0.1 - - [02/Aug/2025 13:51:02] "GET / HTTP/1.1" 200 -
2025-08-02 13:51:02,394 - werkzeug - INFO - 127.0.0.1 - - [02/Aug/2025 13:51:02] "GET /current_model HTTP/1.1" 404 -
FROM: TinyLlama-1.1B-Chat-v1.0-rk3588-w8a8-opt-0-hybrid-ratio-0.5.rkllm
HuggingFace Path: punchnox/Tinnyllama-1.1B-rk3588-rkllm-1.1.4
I rkllm: rkllm-runtime version: 1.2.1, rknpu driver version: 0.9.7, platform: RK3588
I rkllm: loading rkllm model from /home/user1/RKLLAMA/models/tinyllama-chat:1.1b/TinyLlama-1.1B-Chat-v1.0-rk3588-w8a8-opt-0-hybrid-ratio-0.5.rkllm
E rkllm: max_context[16384] must be less than the model's max_context_limit[4096]
2025-08-02 13:51:02,475 - werkzeug - INFO - 127.0.0.1 - - [02/Aug/2025 13:51:02] "POST /load_model HTTP/1.1" 400 -
"""

# NotPunchnox/rkllama#104: Python logging (with quotes and an .rkllm path) just before runtime
# 1.2.3's lines (the thread's later lines are left out).
RKLLAMA_104 = (
    "Debug mode enabled\nSetting the frequency for the rk3588 platform...\nStart the API at http://localhost:8080\n"
    "FROM: gemma-3n-E4B-it-rk3588-w8a8-opt-0-hybrid-ratio-0.0.rkllm\n"
    "HuggingFace Path: hajajmaor/gemma-3n-E4B-it-rk3588-1.2.3\n"
    "2026-01-06 03:55:00,994 - rkllama.rkllm - DEBUG - Initializing RKLLM model from /opt/rkllama/models/gemma-3n-E4B-it/"
    "gemma-3n-E4B-it-rk3588-w8a8-opt-0-hybrid-ratio-0.0.rkllm with options: {'temperature': '0.5', 'num_ctx': '4096', "
    "'max_new_tokens': '1024', 'top_k': '7', 'top_p': '0.5', 'repeat_penalty': '1.1', 'frequency_penalty': '0.0', "
    "'presence_penalty': '0.0', 'mirostat': '0', 'mirostat_tau': '3', 'mirostat_eta': '0.1', "
    "'from': '\"gemma-3n-E4B-it-rk3588-w8a8-opt-0-hybrid-ratio-0.0.rkllm\"', "
    "'huggingface_path': '\"hajajmaor/gemma-3n-E4B-it-rk3588-1.2.3\"', 'system': '\"\"', 'enable_thinking': 'False'}\n"
    "I rkllm: rkllm-runtime version: 1.2.3, rknpu driver version: 0.9.8, platform: RK3588\n"
    "I rkllm: loading rkllm model from /opt/rkllama/models/gemma-3n-E4B-it/"
    "gemma-3n-E4B-it-rk3588-w8a8-opt-0-hybrid-ratio-0.0.rkllm\n")

# airockchip/rknn-toolkit2#281: rknn-toolkit-lite2's own "W "/"E " log lines and a Python
# traceback around librknnrt 1.4.0's lines (its driver line has ":" where later ones have ",").
RKNN_TOOLKIT2_281 = """W rknn-toolkit-lite2 version: 2.3.0
I RKNN: [14:34:00.921] RKNN Runtime Information: librknnrt version: 1.4.0 (a10f100eb@2022-09-09T09:07:14)
I RKNN: [14:34:00.922] RKNN Driver Information: version: 0.9.8
E RKNN: [14:34:00.922] 6, 1
E RKNN: [14:34:00.922] Invalid RKNN model version 6
E RKNN: [14:34:00.922] rknn_init, load model failed!
E Catch exception when init runtime!
E Traceback (most recent call last):
  File "/home/orangepi/.local/lib/python3.10/site-packages/rknnlite/api/rknn_lite.py", line 157, in init_runtime
    self.rknn_runtime.build_graph(self.rknn_data, self.load_model_in_npu)
  File "rknnlite/api/rknn_runtime.py", line 921, in rknnlite.api.rknn_runtime.RKNNRuntime.build_graph
Exception: RKNN init failed. error code: RKNN_ERR_FAIL

Init runtime environment failed!
"""

# airockchip/rknn-toolkit2#534: an E RKNN line without its [HH:MM:SS.mmm] stamp, after the
# poster's own arrow.
RKNN_TOOLKIT2_534 = """rknn_common_test /usr/share/model/RK3576/mobilenet_v1.rknn dog.jpg
→ E RKNN: Meet unsupported target type: 0xffffffff
→ Segmentation fault
"""

# airockchip/rknn-llm#522: runtime 1.3.0, a second rkllm_init without NPU memory (the older
# runtime's return, then 1.3.0's crash); the app's own "second rkllm_init ret=-1" is no error.
RKNN_LLM_522_OLD = "failed to malloc npu memory\nrkllm_init failed\nsecond rkllm_init ret=-1, handle=0\n"
RKNN_LLM_522_130 = "rkllm_init failed\nSegmentation fault\n"

# jaylfc/taOS#1599: a service journal where the driver warning lost its "W ".
TAOS_1599 = ("rkllm: Warning: Your rknpu driver version is too low, please upgrade to 0.9.7\n"
             "I rkllm: rkllm-runtime version: 1.2.3, rknpu driver version: 0.9.6, platform: RK3588\n")

# airockchip/rknn-llm#129: 1.1.2 refuses the model, then the demo says "init success".
RKNN_LLM_129 = """rkllm init start
I rkllm: rkllm-runtime version: 1.1.2, rknpu driver version: 0.9.8, platform: RK3588

E RKNN: [08:48:14.826] invalid rknn llm model magic
E RKNN: [08:48:14.826] load model file error!
rknn_init fail! ret=-1
rkllm init success
"""

# airockchip/rknn-llm#235: 1.1.4 given a model converted by 1.2.
RKNN_LLM_235 = """rkllm init start
I rkllm: rkllm-runtime version: 1.1.4, rknpu driver version: 0.9.8, platform: RK3588

: invalid magic characters '�̔'
: error: failed to load model 'DeepSeek-R1-Distill-Qwen-1.5B.rkllm'
rkllm init failed
"""

# NotPunchnox/rkllama#55: runtime 1.2.1b1 refuses a model; the lines are wrapped in Markdown
# underscores as posted.
RKLLAMA_55 = """_I rkllm: rkllm-runtime version: 1.2.1b1, rknpu driver version: 0.9.8, platform: RK3588
_I rkllm: loading rkllm model from /home/user/RKLLAMA/models/Qwen2.5-7B/Qwen2.5-7B.rkllm_
_E rkllm: invalid rkllm model!__
"""

# huonwe/rkllm_openai_like_api#2 (rockchip.md §2 row 2): driver 0.9.6 cannot hold a big model.
HUONWE_2 = ERRORS[1][0]


def test_1_0_1_refusal_without_level_prefixes():
    log = rkllm_log.parse(AV1D_2)
    assert log["runtime_version"] == "1.0.1" and log["driver_version"] is None
    assert log["warnings"] == ["Warning: The model version is too old, please use the latest toolkit to reconvert "
                               "the model!"]
    assert log["errors"] == ["The model target_platform does not match!",
                             "RKLLM: failed to load model '/home/orangepi/qwen-chat-1_8B.rkllm'!!!",
                             "RKLLM init failed!"]
    assert rkllm_log.init_failure(log) == "The model target_platform does not match!"


def test_a_wrapper_saying_init_success_does_not_hide_the_refusal():
    log = rkllm_log.parse(EZRKNN_LLM_5)
    assert log["runtime_version"] == "1.0.1"
    assert log["errors"] == ["The model target_platform does not match!",
                             "RKLLM: failed to load model 'llama2-chat-7b-hf.rkllm'!!!"]
    assert rkllm_log.init_failure(log) == "The model target_platform does not match!"


def test_1_2_1b1_model_line_without_model_dtype():
    log = rkllm_log.parse(RKNN_LLM_271)
    assert (log["runtime_version"], log["toolkit_version"], log["max_context_limit"], log["npu_core_num"],
            log["target_platform"], log["model_dtype"]) == ("1.2.1b1", "1.2.1b1", 4096, 3, "RK3588", None)
    assert rkllm_log.init_failure(log) == ("E rkllm: The number of enabled CPUs must be greater than or equal to "
                                           "the number of NPU cores."), "the why, not the demo's 'init failed'"


def test_app_output_before_the_runtime_line_and_versions_that_differ():
    log = rkllm_log.parse(LLMSERVER_RS_3)
    assert (log["runtime_version"], log["driver_version"], log["platform"]) == ("1.2.1b1", "0.9.8", "RK3588")
    assert (log["toolkit_version"], log["npu_core_num"], log["target_platform"]) == ("1.2.0", 3, "RK3588")
    assert log["errors"] == [] and log["warnings"] == [], "the server's own failure is not the runtime's"
    assert rkllm_log.init_failure(log) is None


def test_a_1_3_0_runtime_with_a_1_2_1b1_model_keeps_both_versions():
    """No public paste of this pair was found: the lines are rockchip.md §1.2's formats with the
    versions of model-files.md §3 (a 1.2.1b1 model on runtime 1.3.0), under a Python logger."""
    text = ("2026-07-01 10:00:00,001 - app - INFO - loading\n"
            "I rkllm: rkllm-runtime version: 1.3.0, rknpu driver version: 0.9.8, platform: RK3576\n"
            "I rkllm: rkllm-toolkit version: 1.2.1b1, max_context_limit: 4096, npu_core_num: 2, "
            "target_platform: RK3576, model_dtype: W4A16\n")
    log = rkllm_log.parse(text)
    assert (log["runtime_version"], log["toolkit_version"], log["model_dtype"]) == ("1.3.0", "1.2.1b1", "W4A16")


def test_python_logging_around_the_runtime_lines():
    log = rkllm_log.parse(RKLLAMA_60)
    assert (log["runtime_version"], log["driver_version"]) == ("1.2.1", "0.9.7")
    assert log["errors"] == ["E rkllm: max_context[16384] must be less than the model's max_context_limit[4096]"]
    assert rkllm_log.init_failure(log) == log["errors"][0]
    log = rkllm_log.parse(RKLLAMA_104)
    assert (log["runtime_version"], log["platform"], log["toolkit_version"]) == ("1.2.3", "RK3588", None)
    assert log["errors"] == [] and log["warnings"] == [] and rkllm_log.init_failure(log) is None


def test_an_app_logging_its_own_levels_around_librknnrt():
    """The toolkit-lite's "W "/"E " lines are not the runtime's (no "RKNN:" after the level)."""
    log = rkllm_log.parse(RKNN_TOOLKIT2_281)
    assert log["driver_version"] == "0.9.8"
    assert log["errors"] == ["E RKNN: [14:34:00.922] 6, 1", "E RKNN: [14:34:00.922] Invalid RKNN model version 6",
                             "E RKNN: [14:34:00.922] rknn_init, load model failed!"]
    assert log["warnings"] == []
    assert rkllm_log.init_failure(log) == "E RKNN: [14:34:00.922] Invalid RKNN model version 6"


def test_rknn_lines_without_their_timestamp():
    log = rkllm_log.parse(RKNN_TOOLKIT2_534)
    assert log["errors"] == ["E RKNN: Meet unsupported target type: 0xffffffff", "Segmentation fault"]
    # constructed: 1.3.0's form as model-files.md §3 tells it (from a write-up on Qwen3-4B that could not be
    # found to quote): E RKNN without its stamp, then rkllm_init's own failure line
    log = rkllm_log.parse("E RKNN: failed to submit!, op id: 1\nE rkllm: rkllm_init failed\n")
    assert log["errors"] == ["E RKNN: failed to submit!, op id: 1", "E rkllm: rkllm_init failed"]
    assert rkllm_log.init_failure(log) == "E RKNN: failed to submit!, op id: 1"


def test_1_3_0_rkllm_init_failed_without_prefix():
    log = rkllm_log.parse(RKNN_LLM_522_OLD)
    assert log["errors"] == ["failed to malloc npu memory", "rkllm_init failed"]
    assert rkllm_log.init_failure(log) == "failed to malloc npu memory"
    log = rkllm_log.parse(RKNN_LLM_522_130)
    assert log["errors"] == ["rkllm_init failed", "Segmentation fault"]
    assert rkllm_log.init_failure(log) == "rkllm_init failed"


def test_a_driver_warning_that_lost_its_level():
    log = rkllm_log.parse(TAOS_1599)
    assert log["warnings"] == ["rkllm: Warning: Your rknpu driver version is too low, please upgrade to 0.9.7"]
    assert log["driver_version"] == "0.9.6" and log["errors"] == []


@pytest.mark.parametrize("text, why", [
    (RKNN_LLM_129, "E RKNN: [08:48:14.826] invalid rknn llm model magic"),  # despite "rkllm init success"
    (RKNN_LLM_235, "invalid magic characters '�̔'"),
    (RKLLAMA_55, "E rkllm: invalid rkllm model!__"),  # the Markdown underscores are the thread's
    (HUONWE_2, "E RKNN: [10:01:02.003] failed to allocate handle, ret: -1, errno: 14, errstr: Bad address"),
    (V101_QUERY_ERROR, "Query platform error!"),
    (DSHANPI_121 + "rkllm init success\n" + TABLE_121, None),
    (V12X + "E rkllm: matmul(w8a8) run failed\n", None),  # a failure at run time, after init
    ("", None),
], ids=["rknn-llm#129", "rknn-llm#235", "rkllama#55", "huonwe#2", "rknn-llm#39", "dshanpi", "run-time", "empty"])
def test_init_failure_in_the_runtimes_words(text, why):
    assert rkllm_log.init_failure(rkllm_log.parse(text)) == why


def test_init_failure_puts_a_platform_mismatch_first():
    log = {"errors": ["E rkllm: max_context[8192] must be less than the model's max_context_limit[4096]",
                      "E rkllm: invalid rkllm model!", "The model target_platform does not match!",
                      "rkllm init failed"]}
    assert rkllm_log.init_failure(log) == "The model target_platform does not match!"
    assert rkllm_log.init_failure({"errors": log["errors"][:2]}) == "E rkllm: invalid rkllm model!"
    assert rkllm_log.init_failure({}) is None



# --- the demo stand-ins: what they print is what the parser reports ---------------------------


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    root = tmp_path_factory.mktemp("kit")
    bundles = {v: standins.write_bundle(root / f"sdk-{v}", v) for v in standin.VERSIONS}
    mdir = root / "models"
    models.write_models(mdir, [standin.M2B, standin.M3B, standin.M3588])
    models.write_model(mdir, models.MODELS[standin.M2B].evolve(toolkit_version="1.1.4"), name=standin.M2B_TK114)
    return standin.Kit(root, bundles, mdir)


board = standin.board  # a fake board root for the stand-ins
needs_busybox = pytest.mark.skipif(standin.BUSYBOX is None, reason="needs busybox (the guest's shell) on the host")
TWO_TURNS = "0\nWhat is the capital of France?\nexit\n"


@needs_busybox
@pytest.mark.parametrize("version", ["1.1.4", "1.2.0", "1.2.1", "1.2.3", "1.3.0"])
def test_standin_transcripts(kit, board, version):
    model = standin.M2B_TK114 if version < "1.2" else standin.M2B
    r = standin.run(kit, board, version, "demo", standin.demo_args(kit, version, model), stdin=TWO_TURNS)
    assert r.rc == 0, r.err
    log = rkllm_log.parse(r.out)
    assert (log["runtime_version"], log["driver_version"], log["platform"]) == (version, "0.9.8", "RK3576")
    if version < "1.2":
        assert log["toolkit_version"] is None and log["init_ms"] is None
    else:
        assert (log["toolkit_version"], log["max_context_limit"], log["npu_core_num"], log["target_platform"],
                log["model_dtype"]) == ("1.2.1", 4096, 2, "RK3576", "W4A16")
        assert 4000 < log["init_ms"] < 4700  # the stand-in's 4300 ms +- 3 %
    rows = standin.perf_rows(r.out)
    assert len(log["runs"]) == 2 == len(rows) // 2
    for run, (prefill, generate) in zip(log["runs"], zip(rows[::2], rows[1::2])):
        assert (run["prefill_ms"], run["prefill_tokens"], run["prefill_tokens_per_s"]) == (
            prefill[1], prefill[2], prefill[4])
        assert (run["generate_ms"], run["generate_tokens"], run["generate_tokens_per_s"]) == (
            generate[1], generate[2], generate[4])
        if version < "1.2":
            assert run["peak_memory_mib"] is None
        else:  # printed in GB up to 1.2.3 and in MB by 1.3.0: the same MiB either way
            assert run["peak_memory_mib"] == pytest.approx(1792 + 1436.52, rel=0.02)
    assert log["runs"][0]["prefill_tokens"] > 196, "the image turn carries the image tokens"
    assert log["errors"] == []


@needs_busybox
def test_standin_old_driver(kit, board):
    board.driver("0.9.6")
    r = standin.run(kit, board, "1.2.1", "demo", standin.demo_args(kit, "1.2.1"), stdin="0\nexit\n")
    log = rkllm_log.parse(r.out)
    assert log["driver_version"] == "0.9.6"
    assert log["warnings"][0] == "W rkllm: Warning: Your rknpu driver version is too low, please upgrade to 0.9.7"
    assert log["errors"] == ["E rkllm: matmul(w8a8) run failed"] * 28 + ["\\run error"]
    assert log["runs"] == []


@needs_busybox
@pytest.mark.parametrize("case", ["soc", "context", "prompt"])
def test_standin_failures(kit, board, case):
    if case == "soc":
        args, stdin = standin.demo_args(kit, "1.2.1", standin.M3588), "exit\n"
    elif case == "context":
        args, stdin = standin.demo_args(kit, "1.2.1", max_new=2048, max_ctx=16384), "exit\n"
    else:
        args, stdin = standin.demo_args(kit, "1.2.1", max_ctx=200), "0\nexit\n"
    log = rkllm_log.parse(standin.run(kit, board, "1.2.1", "demo", args, stdin=stdin).out)
    if case == "soc":
        assert (log["target_platform"], log["npu_core_num"], log["platform"]) == ("RK3588", 3, "RK3576")
        assert log["errors"][0].startswith("E rkllm: ") and log["errors"][1:] == ["rkllm init failed"]
        assert rkllm_log.init_failure(log) == log["errors"][0] and "target_platform" in log["errors"][0]
    elif case == "context":
        assert log["errors"] == ["E rkllm: max_context[16384] must be less than the model's max_context_limit[4096]",
                                 "rkllm init failed"]
    else:
        assert log["errors"] == ["E rkllm: prompt gather than max context (prompt: 223 tokens, max context: 200)",
                                 "\\run error"]
        assert log["runs"] == []


# --- hil parse rkllm-log ----------------------------------------------------------------------

HIL = Path(sys.executable).parent / "hil"


def hil(*args, stdin=None):
    return subprocess.run([str(HIL), *args], input=stdin, capture_output=True, text=True, timeout=60)


def test_cli_prints_one_json_object(tmp_path):
    path = tmp_path / "run.log"
    path.write_bytes((DSHANPI_121 + "rkllm init success\n" + TABLE_121).replace("\n", "\r\n").encode())
    r = hil("parse", "rkllm-log", str(path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith('{\n  "runtime_version": "1.2.1",\n')
    out = json.loads(r.stdout)
    assert list(out) == list(rkllm_log.KEYS)
    assert out["init_ms"] == 5482.81 and out["platform"] == "RK3576" and out["npu_core_num"] == 2
    assert out["runs"] == [{"prefill_ms": 4143.53, "prefill_tokens": 223, "prefill_tokens_per_s": 53.82,
                            "generate_ms": 20911.6, "generate_tokens": 116, "generate_tokens_per_s": 5.55,
                            "peak_memory_mib": 4659.2}]
    assert out["errors"] == [] and out["warnings"] == []


def test_cli_reads_stdin():
    r = hil("parse", "rkllm-log", "-", stdin=V101_QUERY_ERROR)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["errors"] == ["Query platform error!"]


def test_cli_missing_file(tmp_path):
    missing = tmp_path / "nope.log"
    r = hil("parse", "rkllm-log", str(missing))
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr == f"error: cannot read {missing}: No such file or directory\n"
