"""Dumb widgets: they paint what they are given and report clicks; no logic lives here."""

from desktop.app.widgets.action_bar import ActionBar
from desktop.app.widgets.file_field import FileField
from desktop.app.widgets.layout import Section, action_button, page, row, title, wrapped_label
from desktop.app.widgets.level_meter import LevelMeter
from desktop.app.widgets.message_label import MessageLabel
from desktop.app.widgets.passphrase_field import PassphraseField
from desktop.app.widgets.progress_panel import ProgressPanel
from desktop.app.widgets.stage_list import StageList
from desktop.app.widgets.waveform_view import WaveformView

__all__ = [
    "ActionBar",
    "FileField",
    "LevelMeter",
    "MessageLabel",
    "PassphraseField",
    "ProgressPanel",
    "Section",
    "StageList",
    "WaveformView",
    "action_button",
    "page",
    "row",
    "title",
    "wrapped_label",
]
