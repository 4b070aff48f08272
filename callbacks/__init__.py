"""tcx.callbacks"""
