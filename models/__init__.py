"""tcx.models"""
