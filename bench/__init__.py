"""bench: how well do explanation methods explain an image classifier's mistakes?"""

__version__ = "0.1.0"
