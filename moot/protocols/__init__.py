"""Protocols declared as graphs of phases; one engine walks them all."""
