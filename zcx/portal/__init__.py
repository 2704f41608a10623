"""The members' and operator's web portal (`zcx portal serve`); see docs/portal.md."""
