"""orbitmq.net"""
