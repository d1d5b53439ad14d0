"""The vae-tfp Streamlit dashboard: `python -m streamlit run dashboard/app.py` from the repository root.

app.py wires the pieces; sidebar.py reads the widgets into one RunConfig; state.py holds per-session state;
jobs.py runs training in a background thread; uploads.py takes your own data; figures.py builds Plotly figures; views/
has one module per view.
"""
