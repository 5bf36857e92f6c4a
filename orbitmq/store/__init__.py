"""orbitmq.store"""
