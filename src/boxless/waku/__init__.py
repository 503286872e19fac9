"""waku"""
