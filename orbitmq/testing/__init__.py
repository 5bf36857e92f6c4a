"""orbitmq.testing"""
