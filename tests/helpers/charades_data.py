"""The Charades-layout demo generator (tools/data/make_charades_demo.py), loaded for tests."""
from helpers.tool_modules import load_tool

make_charades_demo = load_tool('data/make_charades_demo.py')
