"""The experiment dashboard: ``runs`` reads the logs, ``app`` is the Streamlit page."""
