"""The live progress line above the tabs (dashboard.views.training.progress_text): the queue position while a job
waits, and then the furthest step the run has reached: a status written a moment before the history's last record
must not show an older step than the curve drawn from that history ("step 11 / 240 · ETA 0 s" under a curve at
step 160 was the old symptom)."""

from dashboard.views.training import progress_text, reached_step
from vae_tfp.jobs import JobStatus


def test_the_progress_line_shows_what_the_run_has_reached():
    status = JobStatus("j", "running", step=11, total_steps=240, epoch=0, epochs=20, images_per_second=1234.0,
                       eta_seconds=0.0, metrics={"elbo": -40.5})
    records = [{"kind": "train", "step": s} for s in range(2, 161, 2)] + [{"kind": "test", "step": 156}]
    assert reached_step(status, records) == 160
    text = progress_text(status, records)
    assert "step 160 / 240" in text and "step 11 " not in text
    assert "1,234 examples/s" in text and "train ELBO -40.50 nats" in text
    ahead = JobStatus("j", "running", step=170, total_steps=240)  # the status ahead of the history: the status
    assert "step 170 / 240" in progress_text(ahead, records)


def test_queued_and_starting_jobs_say_so():
    assert "position 3 in the queue" in progress_text(JobStatus("j", "queued", queue_position=3))
    assert "loading TensorFlow" in progress_text(JobStatus("j", "starting"))
    assert "resuming from step 120 of 240" in progress_text(JobStatus("j", "starting", step=120, total_steps=240))
    assert "**stopping** · step 5 / 10" in progress_text(JobStatus("j", "stopping", step=5, total_steps=10))
