"""The feature server (`featurestore serve`): HTTP protocol, API keys and the app."""
