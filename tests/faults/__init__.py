"""The fault suite: the promise (nothing wrongly killed, nothing of ours left behind, nothing lost,
no silent death) under real host faults, one module per kind of fault."""
