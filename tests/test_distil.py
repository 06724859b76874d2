"""A student of your own: N of the teacher's decoder layers, maximally spaced, the encoder shared; trained in a run
folder like any other with the teacher as the "before" of its result; it loads in transformers' pipeline,
faster-whisper and our Transcriber (what `serve` runs), does less work than its teacher, and its card says so. Bad
teachers and layer counts get one line. Tiny Whisper-shaped models stand in for whisper-base."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from transformers import WhisperForConditionalGeneration, pipeline

from core.cli import main
from core.data import FolderSource, open_artifact, prepare_features
from core.errors import StudioError
from core.languages import get_language
from core.models import export_ctranslate2
from core.models.hf_folders import DemoSpec, build_demo_model
from core.training import TrainConfig, start_run
from core.training.config import DistilRequest
from core.training.distil import DistillationRecord, decoder_mapping, distil_config, student_lines
from core.training.student import student_of
from core.workspace import Workspace

FOUR = DemoSpec(window_seconds=30, decoder_layers=4)  # a 30 s window: faster-whisper pads every window to 30 s


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return build_demo_model(tmp_path_factory.mktemp("teacher") / "four-layers", FOUR)


def test_a_student_keeps_maximally_spaced_layers_the_last_always():
    assert decoder_mapping(6, 2) == [0, 5]  # whisper-base's 6 → 2: the first and the last
    assert decoder_mapping(6, 3) == [0, 2, 5]
    assert decoder_mapping(32, 2) == [0, 31]  # distil-large-v2's choice from large-v2's 32
    assert decoder_mapping(4, 1) == [3]


def test_a_student_is_its_teacher_with_fewer_decoder_layers_and_the_same_encoder(teacher):
    model = WhisperForConditionalGeneration.from_pretrained(teacher)
    model.generation_config.alignment_heads = [[1, 0], [3, 2], [2, 1]]
    student = student_of(model, 2)
    assert student.config.decoder_layers == 2 and model.config.decoder_layers == 4
    assert student.model.encoder is model.model.encoder  # shared: one module, so the encoder cache serves both
    for mine, theirs in ((0, 0), (1, 3)):
        for key, value in student.model.decoder.layers[mine].state_dict().items():
            assert torch.equal(value, model.model.decoder.layers[theirs].state_dict()[key])
    assert torch.equal(student.model.decoder.embed_tokens.weight, model.model.decoder.embed_tokens.weight)
    assert student.proj_out.weight.data_ptr() == student.model.decoder.embed_tokens.weight.data_ptr()  # still tied
    assert student.generation_config.alignment_heads == [[1, 2]]  # the heads of layer 3, now its layer 1


def _one_line(capsys, *args: str) -> str:
    assert main(list(args)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and not [line for line in err[:-1] if "error" in line]
    return err[-1]


def test_bad_teachers_and_layer_counts_get_one_line(tmp_path, capsys, teacher):
    home = ["--home", str(tmp_path / "ws")]
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"model_type": "bert", "num_hidden_layers": 12}))
    line = _one_line(capsys, "distil", *home, "--teacher", str(bert), "--decoder-layers", "2", "--data", "x")
    assert (
        line
        == f"error: {bert}: not a Whisper model (its config says model_type 'bert'); a student is made of a "
        + ("Whisper checkpoint")
    )
    for layers in ("0", "4", "9"):
        line = _one_line(capsys, "distil", *home, "--teacher", str(teacher), "--decoder-layers", layers, "--data", "x")
        assert line == f"error: decoder_layers {layers}: a student keeps 1 to 3 of the teacher's 4 decoder layers"
    line = _one_line(capsys, "distil", *home, "--teacher", str(teacher), "--decoder-layers", "2")
    assert line == "error: the teacher is no run's checkpoint: name the prepared dataset to train on (--data)"
    assert "no such model folder" in _one_line(
        capsys, "distil", *home, "--teacher", "./nowhere", "--decoder-layers", "2"
    )
    exported = export_ctranslate2(str(teacher), Workspace(tmp_path / "ws"), "int8", out=tmp_path / "ct2")
    line = _one_line(capsys, "distil", *home, "--teacher", str(exported), "--decoder-layers", "2", "--data", "x")
    assert "a CTranslate2 export runs inference only" in line
    with pytest.raises(StudioError, match="give teacher and decoder_layers together"):
        TrainConfig(data="d", run="r", decoder_layers=2).validate()
    with pytest.raises(StudioError, match="set model to the teacher, freeze_encoder on and lora_rank 0"):
        TrainConfig(data="d", run="r", model=str(teacher), teacher=str(teacher), decoder_layers=2).validate()


def _layer_calls(model, features: torch.Tensor) -> int:
    """Decoder layer forwards while generating eight tokens for `features`: the decoder's work."""
    calls = []
    hooks = [layer.register_forward_hook(lambda *_: calls.append(1)) for layer in model.model.decoder.layers]
    with torch.inference_mode():
        model.generate(features, max_new_tokens=8, min_new_tokens=8, language="no")
    for hook in hooks:
        hook.remove()
    return len(calls)


@pytest.mark.slow  # a distillation run, an export, three runtimes
@pytest.mark.long
def test_a_student_trains_as_a_run_and_loads_in_every_runtime(teacher, synth_folder, workspace, tmp_path):
    from faster_whisper import WhisperModel

    from core.publish import model_card
    from core.speech import Transcriber

    prepare_features(FolderSource(synth_folder), get_language("nb"), str(teacher), "nb-four", workspace)
    config = distil_config(
        DistilRequest(teacher=str(teacher), decoder_layers=2, data="nb-four", max_steps=4), workspace
    )
    assert (config.teacher, config.model, config.decoder_layers, config.freeze_encoder) == (str(teacher),) * 2 + (
        2,
        True,
    )
    small = dict(train_batch_size=8, eval_batch_size=8, generation_max_length=8, english_guard=False, logging_steps=1)
    run = start_run(replace(config, run="student", **small), workspace, foreground=True)
    assert run.status().state == "completed", run.log_tail(40)
    assert run.config().teacher == str(teacher) and run.config().decoder_layers == 2  # the run says what it is
    result = run.result()
    before = json.loads(run.evaluation_file("checkpoint-0", "nb-four", "test").read_text())
    assert before["model"].endswith("(the teacher)") and result.after.checkpoint.startswith("checkpoint-")
    record = DistillationRecord.of(run)
    assert (record.teacher_layers, record.decoder_layers, record.kept, record.rows) == (4, 2, [0, 3], 3)
    assert record.teacher_seconds > 0 and record.student_seconds > 0
    checkpoint = run.path / result.after.checkpoint
    assert json.loads((checkpoint / "config.json").read_text())["decoder_layers"] == 2
    clip = np.frombuffer(open_artifact(workspace, "nb-four").read_split("test").column("audio")[0].as_py(), np.int16)
    clip = clip.astype(np.float32) / 32768
    asr = pipeline("automatic-speech-recognition", model=str(checkpoint))
    assert isinstance(asr(clip, generate_kwargs={"max_new_tokens": 4})["text"], str)
    exported = export_ctranslate2(str(checkpoint), workspace, "int8", out=tmp_path / "student-ct2")
    few = dict(language="no", beam_size=1, temperature=0.0, max_new_tokens=4)
    segments, info = WhisperModel(str(exported), device="cpu", compute_type="int8").transcribe(clip, **few)
    list(segments)
    assert info.duration == pytest.approx(len(clip) / 16000, abs=0.01)
    assert isinstance(Transcriber(str(exported), workspace, language="no").text(clip), str)  # what serve runs
    student = WhisperForConditionalGeneration.from_pretrained(checkpoint)
    features = torch.from_numpy(np.stack([np.zeros((80, 3000), np.float32)] * 2))
    big = WhisperForConditionalGeneration.from_pretrained(teacher)
    assert _layer_calls(student, features) * 2 == _layer_calls(big, features)  # half the decoder's work a token
    assert sum(p.numel() for p in student.parameters()) < sum(p.numel() for p in big.parameters())
    card = model_card(run, checkpoint, "me/student", ctranslate2=False)
    assert "### A smaller student" in card and "keeping 2 of its decoder layers (2 of 4: layers [0, 3])" in card
    assert any("as fast" in line for line in student_lines(run))
