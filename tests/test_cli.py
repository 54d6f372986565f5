"""The kerasdl command: summary counts, errors in one line with exit 2."""

import json
import os
import subprocess
import sys

import pytest

from kerasdl import cli

REFERENCE = [
    (["vgg16"], (138_357_544, 138_357_544, 0)),
    (["vgg16_bn"], (138_390_312, 138_373_928, 16_384)),
    (["vgg16", "--head", "2"], (134_268_738, 8_194, 134_260_544)),
    (["linear_bn", "--input-shape", "224,224,3"], (1_505_302, 1_505_296, 6)),
    (["conv_bn", "--classes", "10"], (7_395_598, 7_395_000, 598)),
    (["dense_bn_head", "--input-shape", "14,14,512"],
     (3_230_218, 3_229_706, 512)),
    # the backbones: keras.applications' own counts (the figures its
    # documentation gives; test_backbones compares the models themselves)
    (["resnet50"], (25_636_712, 25_583_592, 53_120)),
    (["resnet50v2"], (25_613_800, 25_568_360, 45_440)),
    (["efficientnetv2b0"], (7_200_312, 7_139_704, 60_608)),
    (["convnext_tiny"], (28_589_128, 28_589_128, 0)),
    (["mobilenetv3small", "--input-shape", "96,96,3"],
     (2_554_968, 2_542_856, 12_112)),
    (["efficientnet_lite0"], (4_694_024, 4_652_008, 42_016)),
    # 2,049 x 10 instead of 2,049 x 1,000 in the classifier
    (["resnet50", "--classes", "10"], (23_608_202, 23_555_082, 53_120)),
]


@pytest.mark.parametrize("argv,counts", REFERENCE)
def test_summary_json_counts(argv, counts, capsys):
    assert cli.main(["summary", *argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (out["total"], out["trainable"], out["non_trainable"]) == counts


def test_summary_prints_model_summary(capsys):
    assert cli.main(["summary", "linear_bn", "--input-shape", "8x8x3"]) == 0
    out = capsys.readouterr().out
    assert "bn_input" in out and "predictions" in out
    assert "total: 1,942  trainable: 1,936  non-trainable: 6" in out


def _run(*args):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH"))
                           if p)
    env = dict(os.environ, PYTHONPATH=path)
    return subprocess.run([sys.executable, "-m", "kerasdl", *args],
                          capture_output=True, text=True, env=env,
                          timeout=300)


@pytest.mark.parametrize("args,needle", [
    (["summary", "resnet9"], "unknown model 'resnet9'; expected one of"),
    (["summary", "vgg16", "--input-shape", "224,224"],
     "--input-shape must be three positive integers"),
    (["summary", "conv_bn", "--classes", "1"],
     "--classes must be an integer >= 2"),
    (["summary", "conv_bn", "--classes", "two"], "invalid int value"),
    (["summary"], "the following arguments are required: NAME"),
    (["nonsense"], "invalid choice"),
])
def test_user_mistakes_are_one_line_exit_2(args, needle):
    result = _run(*args)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = [ln for ln in result.stderr.splitlines()
             if ln.startswith("kerasdl")]
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_model_error_is_one_line_exit_2(capsys):
    assert cli.main(["summary", "vgg16", "--input-shape", "16,16,3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "at least 32x32" in err
    assert cli.main(["summary", "convnext_tiny", "--input-shape",
                     "16,64,3"]) == 2
    err = capsys.readouterr().err
    assert err == ("kerasdl summary: error: ConvNeXtTiny needs images of at "
                   "least 32x32 pixels. Received: --input-shape (16, 64, 3)."
                   " Resize the images up.\n")


def test_summary_of_a_backbone_shows_its_layers(capsys):
    assert cli.main(["summary", "resnet50v2", "--input-shape", "64,64,3",
                     "--head", "2"]) == 0
    out = capsys.readouterr().out
    for layer in ("image", "preprocess", "conv1_conv", "post_relu",
                  "avg_pool", "predictions"):
        assert layer in out
    # the new 2-class head (2,048 x 2 + 2) is all that trains
    assert out.rstrip().endswith("total: 23,568,898  trainable: 4,098  "
                                 "non-trainable: 23,564,800")


def test_help_lists_commands():
    result = _run("--help")
    assert result.returncode == 0
    assert "summary" in result.stdout and "demo" in result.stdout


@pytest.mark.parametrize("name,shape,classes", [
    ("linear_bn", (8, 8, 3), 10), ("conv_bn", (32, 40, 3), 7),
    ("deeper_conv_bn", (16, 16, 3), 3), ("dense_bn_head", (4, 4, 8), 5),
    ("dot_bias", (30, 20, 4), None),
])
def test_count_params_without_allocating_equals_the_built_model(
        name, shape, classes):
    from kerasdl import registry
    from kerasdl.models import param_counts

    build, _, _ = registry.lookup(name)
    counted = registry.count_params(lambda: build(shape, classes))
    assert counted == param_counts(build(shape, classes))[0]


def test_sizes_beyond_memory_refused_before_building(capsys):
    # 201,000,007,393,588 parameters: 804 TB of float32
    assert cli.main(["summary", "conv_bn", "--classes",
                     "1000000000000"]) == 2
    err = capsys.readouterr().err
    assert "201,000,007,393,588 parameters" in err and err.count("\n") == 1
    assert cli.main(["summary", "dot", "--head", "5"]) == 2
    assert "does not apply to dot" in capsys.readouterr().err
