"""Exports of ZCX's chain data in other registries' shapes (`zcx export ...`)."""
