"""The architecture contract: ViT_base_patch16_384 prints the seed's paddle.summary table."""

import paddle

from conftest import assert_one_line_error, run_tool
from vit.models import count_parameters, create_model, summarize, table_diff


def _stripped_lines(text):
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def test_summary_matches_the_seed_table_line_for_line(seed_table):
    printed = _stripped_lines(summarize("ViT_base_patch16_384"))
    seed = _stripped_lines(seed_table)
    assert len(seed) == 185
    # Paddle prints one dashed rule above the header that the seed omits
    assert set(printed[0]) == {"-"}
    assert printed[1:] == seed


def test_summary_tool_prints_the_table_and_nothing_else(seed_table):
    result = run_tool("summary")
    assert result.returncode == 0, result.stderr
    assert _stripped_lines(result.stdout)[1:] == _stripped_lines(seed_table)


def test_row_numbering_does_not_depend_on_models_built_before(seed_table):
    create_model("ViT_tiny_patch4_16")  # advances Paddle's per-class layer counters
    assert table_diff(summarize("ViT_base_patch16_384"), seed_table) == ""


def test_table_total_leaves_out_the_top_level_parameters(seed_table):
    with paddle.LazyGuard():
        model = create_model("ViT_base_patch16_384")
    assert count_parameters(model) == 86_859_496
    assert "Total params: 86,415,592" in seed_table
    top_level = model.cls_token.size + model.pos_embed.size
    assert top_level == 443_904 == 86_859_496 - 86_415_592


def test_check_flag_reports_a_readable_diff_and_fails(tmp_path, seed_table):
    changed = tmp_path / "changed.txt"
    changed.write_text(seed_table.replace("Linear-49", "Linear-50"), encoding="utf-8")
    result = run_tool("summary", "--check", changed)
    assert result.returncode == 1
    assert "-   Linear-50" in result.stderr and "+   Linear-49" in result.stderr


def test_check_flag_accepts_the_seed(tmp_path, seed_table):
    saved = tmp_path / "seed.txt"
    saved.write_text(seed_table, encoding="utf-8")
    result = run_tool("summary", "--check", saved)
    assert result.returncode == 0, result.stderr
    assert "matches" in result.stderr


def test_summary_tool_options_change_the_table():
    result = run_tool("summary", "-m", "ViT_tiny_patch4_16", "--img-size", "32",
                      "--num-classes", "10", "--batch-size", "2", "--flops")
    assert result.returncode == 0, result.stderr
    assert "[[2, 3, 32, 32]]" in result.stdout
    assert "[2, 10]" in result.stdout
    assert "attention matmuls" in result.stdout


def test_summary_tool_unknown_model_is_one_line():
    result = run_tool("summary", "-m", "ViT_bsae_patch16_384")
    assert_one_line_error(result, "unknown model 'ViT_bsae_patch16_384'", "ViT_base_patch16_384")
