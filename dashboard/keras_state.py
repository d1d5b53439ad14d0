"""Keep Streamlit from resetting Keras in the page's process, where models are still built (to draw them).

Training runs in worker processes now (`vae_tfp.jobs`), which never see Streamlit and clear Keras themselves between
jobs. The page process still builds models: each session loads the run it shows (`vae_tfp.runs.load_model`:
`build_vae` + weights) and the views trace small functions on it, in that session's script thread, and several
sessions do this at the same time. After every script run (fragment runs included) Streamlit calls
`keras.backend.clear_session()`, which replaces Keras' per-thread state for *all* threads (layer-name counters,
seeds, scopes): one session's rerun ending while another session builds a model breaks that build ("The name
'dense' is used 2 times in the model"). Clearing would free nothing either: the models stay alive on purpose, in
their session's memory, until the session ends (`dashboard.state.session_memory`). So that one cleanup is skipped;
any other caller of clear_session still gets the real one.
"""


def keep_keras_state() -> None:
    """Skip Streamlit's after-run `keras.backend.clear_session()`. Idempotent; call after Keras is imported,
    before building a model."""
    import sys

    import keras

    original = keras.backend.clear_session
    if getattr(original, "keeps_keras_state", False):
        return

    def clear_session(*args, **kwargs):
        if sys._getframe(1).f_code.co_name == "_clean_problem_modules":  # Streamlit's after-run cleanup
            return None
        return original(*args, **kwargs)

    clear_session.keeps_keras_state = True
    keras.backend.clear_session = clear_session
